package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"strings"
	"sync/atomic"

	"github.com/flowstate/flowstate/abi"
	"github.com/flowstate/flowstate/state"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"
)

// InstanceConfig configures the instance of one task.
type InstanceConfig struct {
	// DB is the task's store. Required. The instance reads and writes it
	// only inside Process (and _initialize), on the caller's goroutine.
	DB *state.DB
	// Stores are the store names store_open resolves, each a store of DB;
	// the handle of Stores[i] is i.
	Stores []string
	// Topics are the output topics topic_open resolves; the handle of
	// Topics[i] is i.
	Topics []string
	// Logger receives the guest's log calls, its stdout and stderr (debug),
	// and lifecycle events; attach the pipeline and partition with With.
	// Nil uses the Runtime's logger.
	Logger *slog.Logger
}

func (c InstanceConfig) validate() error {
	var errs []error
	if c.DB == nil {
		errs = append(errs, fmt.Errorf("%w: no DB", ErrInvalidConfig))
	}
	seen := make(map[string]bool)
	for _, s := range c.Stores {
		if seen[s] {
			errs = append(errs, fmt.Errorf("%w: duplicate store %q", ErrInvalidConfig, s))
		}
		seen[s] = true
		if c.DB != nil {
			if _, ok := c.DB.StoreID(s); !ok {
				errs = append(errs, fmt.Errorf("%w: store %q is not a store of the DB (%s)", ErrInvalidConfig, s, strings.Join(c.DB.Stores(), ", ")))
			}
		}
	}
	clear(seen)
	for _, t := range c.Topics {
		if seen[t] {
			errs = append(errs, fmt.Errorf("%w: duplicate topic %q", ErrInvalidConfig, t))
		}
		seen[t] = true
	}
	return errors.Join(errs...)
}

// Output is a record the guest emitted. Its slices are the host's own
// copies, never reused by the Instance: they stay valid after the next
// Process.
type Output struct {
	Topic string
	Key   []byte // nil for a null key
	Value []byte // nil for a null value (a tombstone)
	// Headers are the record's headers, nil when there are none.
	Headers []abi.Header
}

// Metrics is a snapshot of an Instance's counters.
type Metrics struct {
	Batches        int64 // Process calls that ran the guest
	FailedBatches  int64 // of those, the ones that failed and were rolled back
	Records        int64 // input records of successful batches
	Outputs        int64 // records emitted by successful batches
	Instantiations int64 // guest instantiations, the first one included
}

// Instance is one task's instance of a module: a guest module instance and
// the host module its flowstate imports resolve to, whose functions are
// closures bound to this Instance (so a host call finds its state without a
// lookup). After a trap, a timeout or an exit the guest is discarded and a
// fresh one is instantiated by the next Process.
//
// An Instance belongs to its task's goroutine, like the task's DB: only
// Metrics may be called from other goroutines.
type Instance struct {
	m      *Module
	log    *slog.Logger
	db     *state.DB
	stores []int    // store handle -> DB store ID
	names  []string // store handle -> name
	topics []string // topic handle -> topic

	hostCompiled wazero.CompiledModule
	host         api.Module
	resolve      experimental.ImportResolver
	stdout       logWriter
	stderr       logWriter

	guest   api.Module // nil when discarded
	alloc   api.Function
	process api.Function
	stack   [2]uint64
	// stop is the guest's interrupt global (interrupt.go), nil for a
	// module that is not interruptible; interrupted is set when the host
	// set it during the current call.
	stop        api.MutableGlobal
	disarm      func() // of the current arm, nil when none
	interrupted bool

	// Batch state, reset by each Process.
	inBatch  bool
	out      []Output
	out0     int // len(out) when the batch started
	outBytes int
	// writeBytes is the key and value bytes of the batch's store writes.
	writeBytes int
	slab       []byte // backing of this batch's Output slices
	iters      []openIter
	nextIter   int32
	failMsg    string
	refused    error // first refused write or emit
	internal   error // first host-side failure

	metrics struct {
		batches, failed, records, outputs, instantiations atomic.Int64
	}
	closed bool
}

// Instantiate makes an Instance for one task: it instantiates the host
// functions and the guest, runs _initialize if exported and checks that
// flowstate_abi_version returns abi.Version. Both guest calls run under
// Limits.CallTimeout. An unsupported version is an error wrapping
// ErrABIVersion.
func (m *Module) Instantiate(ctx context.Context, cfg InstanceConfig) (*Instance, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("instantiate %s: %w", m.name, err)
	}
	log := cfg.Logger
	if log == nil {
		log = m.log
	} else {
		log = log.With("module", m.name)
	}
	i := &Instance{
		m:      m,
		log:    log,
		db:     cfg.DB,
		names:  cfg.Stores,
		topics: cfg.Topics,
		stdout: logWriter{log: log, stream: "stdout"},
		stderr: logWriter{log: log, stream: "stderr"},
	}
	for _, s := range cfg.Stores {
		id, _ := cfg.DB.StoreID(s)
		i.stores = append(i.stores, id)
	}
	i.resolve = func(name string) api.Module {
		if name == abi.ImportModule {
			return i.host
		}
		return nil
	}
	if err := i.buildHost(ctx); err != nil {
		i.Close(ctx)
		return nil, fmt.Errorf("instantiate %s: host functions: %w", m.name, err)
	}
	if err := i.start(ctx); err != nil {
		i.Close(ctx)
		return nil, fmt.Errorf("instantiate %s: %w", m.name, err)
	}
	return i, nil
}

// buildHost compiles and instantiates this Instance's own flowstate host
// module. It is anonymous (not registered in the wazero runtime), so any
// number coexist; the guest's flowstate imports reach it through the import
// resolver that start puts in the context.
func (i *Instance) buildHost(ctx context.Context) error {
	r := i.m.w.r
	b := r.NewHostModuleBuilder(abi.ImportModule)
	for name, fn := range i.hostFuncs() {
		b.NewFunctionBuilder().
			WithGoModuleFunction(fn, i32s(importParams[name]), i32s(1)).
			WithName(name).
			Export(name)
	}
	cm, err := b.Compile(ctx)
	if err != nil {
		return err
	}
	i.hostCompiled = cm
	i.host, err = r.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	return err
}

// start discards the guest, if any, and instantiates a fresh one.
func (i *Instance) start(ctx context.Context) error {
	i.discard(ctx)
	cctx, cancel := context.WithTimeout(ctx, i.m.lim.CallTimeout)
	defer cancel()
	mc := wazero.NewModuleConfig().
		// Anonymous: instances of one module do not collide by name.
		WithName("").
		// _initialize is called below, under the timeout, with its error
		// classified like any guest call.
		WithStartFunctions().
		WithStdout(i.stdout).
		WithStderr(i.stderr)
	// No WithFS, WithEnv, WithArgs, WithSysWalltime, WithSysNanotime,
	// WithRandSource: see the Sandbox section of doc.go.
	g, err := i.m.w.r.InstantiateModule(experimental.WithImportResolver(cctx, i.resolve), i.m.compiled, mc)
	if err != nil {
		var exit *sys.ExitError
		if errors.As(err, &exit) {
			return i.callErr(ctx, err)
		}
		return err
	}
	i.guest = g
	i.alloc = g.ExportedFunction(abi.ExportAlloc)
	i.process = g.ExportedFunction(abi.ExportProcess)
	i.failMsg = ""
	if i.m.interruptible {
		stop, ok := g.ExportedGlobal(interruptExport).(api.MutableGlobal)
		if !ok {
			i.discard(ctx)
			return fmt.Errorf("%w: the instrumented module lacks its %s global", ErrInternal, interruptExport)
		}
		i.stop = stop
		defer i.arm(cctx)()
	}
	if i.m.hasStart {
		// The module's start function, taken out of instantiation by
		// instrument so that it runs under the timeout.
		err := g.ExportedFunction(startExport).CallWithStack(cctx, i.stack[:])
		i.closeIters()
		if err != nil {
			return fmt.Errorf("start function: %w", i.callErr(ctx, err))
		}
	}
	if init := g.ExportedFunction(abi.ExportInitialize); init != nil {
		err := init.CallWithStack(cctx, i.stack[:])
		i.closeIters()
		if err != nil {
			return fmt.Errorf("%s: %w", abi.ExportInitialize, i.callErr(ctx, err))
		}
	}
	if err := g.ExportedFunction(abi.ExportVersion).CallWithStack(cctx, i.stack[:]); err != nil {
		return fmt.Errorf("%s: %w", abi.ExportVersion, i.callErr(ctx, err))
	}
	if v := int32(i.stack[0]); v != abi.Version {
		i.discard(ctx)
		return fmt.Errorf("%w: %s returned %d, the host supports %d (checked at instantiation, since it runs guest code)",
			ErrABIVersion, abi.ExportVersion, v, abi.Version)
	}
	i.metrics.instantiations.Add(1)
	i.log.Debug("guest instantiated")
	return nil
}

// discard closes the guest; the next Process instantiates a fresh one.
func (i *Instance) discard(ctx context.Context) {
	if i.guest == nil {
		return
	}
	if err := i.guest.Close(ctx); err != nil {
		i.log.Warn("close guest", "err", err)
	}
	i.guest, i.alloc, i.process, i.stop = nil, nil, nil, nil
	i.disarm, i.interrupted = nil, false
}

// arm makes the end of cctx (its deadline, or the caller's cancel) set the
// guest's interrupt global, so that the guest traps at its next loop header,
// until the returned disarm. disarm waits for a concurrent set to finish
// and, if the guest is still alive, clears the global again: a deadline that
// fires just as a call returns must not fail the next call. For a module
// that is not interruptible, wazero's context check does this instead and
// arm does nothing.
func (i *Instance) arm(cctx context.Context) (disarm func()) {
	if i.stop == nil {
		return func() {}
	}
	stop := i.stop
	fired := make(chan struct{})
	cancel := context.AfterFunc(cctx, func() {
		stop.Set(1)
		close(fired)
	})
	i.interrupted = false
	done := false
	i.disarm = func() {
		if done {
			return
		}
		done = true
		if cancel() {
			return
		}
		<-fired // the set happened before the guest could trap on it
		i.interrupted = true
		stop.Set(0)
	}
	return i.disarm
}

// callErr turns the error of a guest call into a *GuestError and discards
// the guest, which a trap may have left inconsistent and a timeout or exit
// has closed. If ctx itself ended, its error is returned instead: the caller
// gave up, the guest did nothing wrong.
func (i *Instance) callErr(ctx context.Context, err error) error {
	if i.disarm != nil {
		i.disarm() // settles whether the host interrupted the call
	}
	interrupted := i.interrupted
	i.discard(ctx)
	var exit *sys.ExitError
	if interrupted {
		// The trap at a loop header that the interrupt global asked for.
		if ctx.Err() != nil {
			return ctx.Err()
		}
		err = fmt.Errorf("%w after %s", ErrTimeout, i.m.lim.CallTimeout)
	} else if errors.As(err, &exit) {
		switch exit.ExitCode() {
		case sys.ExitCodeDeadlineExceeded, sys.ExitCodeContextCanceled:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			err = fmt.Errorf("%w after %s", ErrTimeout, i.m.lim.CallTimeout)
		default:
			err = fmt.Errorf("%w with code %d", ErrExit, exit.ExitCode())
		}
	} else if _, ok := errors.AsType[runtime.Error](err); ok {
		// wazero recovers a panic in a host function and returns it like a
		// trap; the guest did nothing wrong, so it must not be treated as a
		// poison record.
		err = fmt.Errorf("%w: a host function panicked: %w", ErrInternal, err)
	} else {
		err = fmt.Errorf("%w: %w", ErrTrap, err)
	}
	return &GuestError{Module: i.m.name, Message: i.failMsg, Err: err}
}

// Process runs the guest once over recs: flowstate_alloc for the batch
// encoding, which the host writes into guest memory, then
// flowstate_process. It appends the batch's outputs to out and returns it.
//
// The batch is atomic: Process takes a DB savepoint first and, on any
// failure (a non-zero return, a trap, a timeout, proc_exit, a refused write
// or emit, a host-side error), rolls the DB back to it, drops the batch's
// outputs (returning out unchanged) and returns a *GuestError. If ctx ends
// during the call, the batch is rolled back the same way and ctx's error is
// returned. A guest that trapped, timed out or exited is replaced by a fresh
// instance on the next Process, so the caller may retry or move on.
func (i *Instance) Process(ctx context.Context, recs []abi.Record, out []Output) ([]Output, error) {
	if i.closed {
		return out, fmt.Errorf("process %s: %w", i.m.name, ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return out, fmt.Errorf("process %s: %w", i.m.name, err)
	}
	// A guest can also be closed by a deadline that fired just as its last
	// call returned.
	if i.guest == nil || i.guest.IsClosed() {
		if err := i.start(ctx); err != nil {
			return out, fmt.Errorf("process %s: restart guest: %w", i.m.name, err)
		}
	}
	i.metrics.batches.Add(1)
	sp := i.db.Savepoint()
	i.out, i.out0, i.outBytes, i.writeBytes, i.slab = out, len(out), 0, 0, nil
	i.failMsg, i.refused, i.internal = "", nil, nil

	err := i.run(ctx, recs)
	i.closeIters()
	out, i.out, i.slab = i.out, nil, nil
	if err != nil {
		i.db.RollbackTo(sp)
		clear(out[i.out0:])
		out = out[:i.out0]
		i.metrics.failed.Add(1)
	} else {
		i.metrics.records.Add(int64(len(recs)))
		i.metrics.outputs.Add(int64(len(out) - i.out0))
	}
	i.db.Release(sp)
	return out, err
}

// run makes the two guest calls of a batch.
func (i *Instance) run(ctx context.Context, recs []abi.Record) error {
	size := abi.BatchSize(recs)
	if size > math.MaxUint32 {
		return &GuestError{Module: i.m.name, Err: fmt.Errorf("%w: the batch encoding has %d bytes, over 4 GiB", ErrOutOfMemory, size)}
	}
	cctx, cancel := context.WithTimeout(ctx, i.m.lim.CallTimeout)
	defer cancel()
	defer i.arm(cctx)()
	i.stack[0] = api.EncodeU32(uint32(size))
	if err := i.alloc.CallWithStack(cctx, i.stack[:]); err != nil {
		return i.callErr(ctx, fmt.Errorf("%s: %w", abi.ExportAlloc, err))
	}
	ptr := api.DecodeU32(i.stack[0])
	view, ok := i.guest.Memory().Read(ptr, uint32(size))
	if ptr == 0 || !ok {
		return &GuestError{Module: i.m.name, Err: fmt.Errorf("%w: %s(%d) returned %#x (memory has %d bytes, memory_mb is %d)",
			ErrOutOfMemory, abi.ExportAlloc, size, ptr, i.guest.Memory().Size(), i.m.lim.MemoryMB)}
	}
	// Encode in place: view has exactly size bytes of capacity, so append
	// never reallocates.
	abi.AppendBatch(view[:0], recs)

	i.stack[0], i.stack[1] = api.EncodeU32(ptr), api.EncodeU32(uint32(size))
	i.inBatch = true
	err := i.process.CallWithStack(cctx, i.stack[:])
	i.inBatch = false
	if err != nil {
		return i.callErr(ctx, err)
	}
	code := api.DecodeI32(i.stack[0])
	switch {
	case i.internal != nil:
		return &GuestError{Module: i.m.name, Code: code, Message: i.failMsg, Err: fmt.Errorf("%w: %w", ErrInternal, i.internal)}
	case i.refused != nil:
		return &GuestError{Module: i.m.name, Code: code, Message: i.failMsg, Err: fmt.Errorf("%w: %w", ErrOutputRefused, i.refused)}
	case code != 0:
		return &GuestError{Module: i.m.name, Code: code, Message: i.failMsg}
	}
	return nil
}

// Metrics returns a snapshot of the counters. It is safe to call from any
// goroutine.
func (i *Instance) Metrics() Metrics {
	return Metrics{
		Batches:        i.metrics.batches.Load(),
		FailedBatches:  i.metrics.failed.Load(),
		Records:        i.metrics.records.Load(),
		Outputs:        i.metrics.outputs.Load(),
		Instantiations: i.metrics.instantiations.Load(),
	}
}

// Close closes the guest and the host functions. It is idempotent; the DB
// stays open (it belongs to the caller).
func (i *Instance) Close(ctx context.Context) error {
	if i.closed {
		return nil
	}
	i.closed = true
	i.closeIters()
	var errs []error
	if i.guest != nil {
		errs = append(errs, i.guest.Close(ctx))
		i.guest, i.alloc, i.process = nil, nil, nil
	}
	if i.host != nil {
		errs = append(errs, i.host.Close(ctx))
	}
	if i.hostCompiled != nil {
		errs = append(errs, i.hostCompiled.Close(ctx))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close instance of %s: %w", i.m.name, err)
	}
	return nil
}

// copyOut copies b into the batch's slab, keeping nil as nil. The slab is
// never reused across batches: the caller owns the Outputs.
func (i *Instance) copyOut(b []byte) []byte {
	switch {
	case b == nil:
		return nil
	case len(b) == 0:
		return []byte{}
	}
	if len(i.slab)+len(b) > cap(i.slab) {
		n := min(max(2*cap(i.slab), 4<<10), 1<<20)
		i.slab = make([]byte, 0, max(n, len(b)))
	}
	start := len(i.slab)
	i.slab = append(i.slab, b...)
	return i.slab[start:len(i.slab):len(i.slab)]
}

// maxLogBytes caps the guest's log, fail and stdout messages.
const maxLogBytes = 4 << 10

// logWriter is a guest's stdout or stderr: each write is a debug event.
type logWriter struct {
	log    *slog.Logger
	stream string
}

func (w logWriter) Write(p []byte) (int, error) {
	if w.log.Enabled(context.Background(), slog.LevelDebug) {
		text := strings.TrimRight(string(p[:min(len(p), maxLogBytes)]), "\n")
		w.log.Debug("guest output", "stream", w.stream, "text", text)
	}
	return len(p), nil
}
