// Package host owns the wazero runtime, module compilation and validation,
// one instance per task, the host functions of the ABI, and the sandbox
// limits.
//
// # Use
//
//	rt, err := host.NewRuntime(ctx, host.RuntimeConfig{CacheDir: dir, Logger: log})
//	m, err := rt.Compile(ctx, "wordcount", wasm, limits)           // once per pipeline
//	inst, err := m.Instantiate(ctx, host.InstanceConfig{DB: db, ...}) // once per task
//	out, err = inst.Process(ctx, records, out[:0])                  // once per batch
//
// Compile checks a module against abi/SPEC.md before any task uses it: each
// problem is a distinct error naming the module (ErrNotWasm,
// ErrInvalidModule, ErrMissingExport, ErrExportSignature, ErrUnknownImport,
// ErrImportSignature). Imports of tables, globals and tags, which wazero's
// compiled module does not list, are found by reading the module's import
// section (wasmcheck.go). The ABI version is returned by guest code, so
// Instantiate checks it (ErrABIVersion), after running _initialize.
//
// # Batches
//
// Process makes one guest call per batch: flowstate_alloc for the batch
// encoding, which the host writes in place into guest memory, then
// flowstate_process. The batch is atomic: Process takes a state.DB
// savepoint, and on any failure rolls the store back to it, drops the
// batch's outputs and returns a *GuestError. Failures are a non-zero return
// (with the message the guest passed to fail), a trap (ErrTrap), a call
// over Limits.CallTimeout (ErrTimeout), proc_exit (ErrExit), an
// unallocatable batch (ErrOutOfMemory), and two the guest cannot wave away
// by returning 0, since the batch's effects would be incomplete: a refused
// write or emit (TOO_LARGE or LIMIT_EXCEEDED from kv_put or emit,
// ErrOutputRefused) and a host-side error (INTERNAL, ErrInternal). After a
// trap, timeout or exit the guest is discarded and the next Process
// instantiates a fresh one.
//
// Outside flowstate_process, in _initialize, kv_put, kv_delete and emit
// return INVALID: writes and outputs belong to a batch. Reads, store_open,
// topic_open, log and fail work.
//
// # Host functions
//
// Host functions are stack-based api.GoModuleFunc values (wazero's WithFunc
// uses reflection: about 1.9 µs per call against 0.11 µs here). Each
// Instance compiles and instantiates its own anonymous "flowstate" host
// module whose functions are closures over the Instance, and the guest's
// imports resolve to it through experimental.WithImportResolver: a host
// call reaches its task's state with no lookup. Every (ptr, len) is checked
// with api.Memory.Read; handles are checked; bad input gets an abi.Code,
// never a panic. Guest pointers are not kept past the call.
//
// # Sandbox
//
// Guests get wasi_snapshot_preview1 with no preopened directories, no
// environment, no arguments and no sockets; stdout and stderr go to the
// instance's logger at debug level. Clocks and randomness are wazero's
// defaults, which are deterministic (verified in TestSandbox): the wall
// clock reads 2022-01-01T00:00:00Z and the monotonic clock 0 at
// instantiation, each advancing 1 ms per reading; sleeping returns at once;
// random_get is a pseudo-random sequence with a fixed seed. Each fresh
// instance starts these over. Limits caps linear memory (one wazero runtime
// per distinct MemoryMB, all sharing one compilation cache), wall time per
// guest call (a check Compile adds at every loop header, interrupt.go, so
// that a looping guest stops; wazero's WithCloseOnContextDone for a module
// it cannot rewrite),
// output records and bytes per batch, key and value sizes, and open
// iterators. Tables live outside linear memory, and wazero bounds neither a
// table's declared size nor table.grow (a guest of memory_mb 1 could take
// gigabytes), so Compile refuses tables of more than 1<<20 elements in all
// and gives each table a maximum within that (wasmcheck.go). A panic in a
// host function, which wazero recovers and returns like a trap, fails the
// batch with ErrInternal, not ErrTrap: it is the host's fault, not the
// record's.
//
// # Ownership
//
// A Runtime and its Modules are safe for concurrent use. An Instance, like
// the state.DB it writes to, belongs to its task's goroutine.
package host
