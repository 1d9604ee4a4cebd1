package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/flowstate/flowstate/abi"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	wasi "github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Module is a compiled and checked guest module with its limits. Compile it
// once per pipeline; each task instantiates it. It is safe for concurrent
// use.
type Module struct {
	name     string
	lim      Limits
	w        *wruntime
	compiled wazero.CompiledModule
	log      *slog.Logger
	// interruptible is set for a module rewritten by instrument: its
	// instances stop a call through the interruptExport global. Otherwise
	// its runtime checks the context at loop headers.
	interruptible bool
	// hasStart is set when instrument moved a start function to
	// startExport.
	hasStart bool
}

// wasmHeader is the magic number and version 1 that start every Wasm binary.
var wasmHeader = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

// Compile compiles wasm, named name in errors and logs, and checks it
// against SPEC.md: the exports flowstate_abi_version, flowstate_alloc,
// flowstate_process and memory with their signatures, imports only of the
// flowstate functions and wasi_snapshot_preview1, and tables of at most
// maxTableElements in all (each table is given a maximum, so that
// table.grow cannot take host memory past it). Each problem is an
// error wrapping one of ErrNotWasm, ErrInvalidModule, ErrMissingExport,
// ErrExportSignature, ErrUnknownImport or ErrImportSignature, joined when
// there are several. The ABI version needs running the guest, so Instantiate
// checks it. lim is completed with EnsureDefaults and validated.
func (r *Runtime) Compile(ctx context.Context, name string, wasm []byte, lim Limits) (*Module, error) {
	lim.EnsureDefaults()
	if err := lim.Validate(); err != nil {
		return nil, fmt.Errorf("compile %s: %w", name, err)
	}
	if !bytes.HasPrefix(wasm, wasmHeader) {
		return nil, fmt.Errorf("compile %s: %w: the first bytes are %q, want %q", name, ErrNotWasm, wasm[:min(len(wasm), 8)], wasmHeader)
	}
	start := time.Now()
	prepared, problems, err := prepareModule(wasm) // wasmcheck.go
	ins, ierr := instrument(prepared)              // interrupt.go
	if r.contextCheck {
		ierr = errors.New("RuntimeConfig.ContextCheck is set")
	}
	if err == nil && ierr == nil {
		prepared = ins.wasm
	} else if err == nil {
		r.log.Info("module keeps wazero's context check at loop headers (slower guest calls)", "module", name, "why", ierr)
	}
	w, werr := r.runtime(ctx, lim.memoryPages(), ierr != nil)
	if werr != nil {
		return nil, fmt.Errorf("compile %s: %w", name, werr)
	}
	if err != nil {
		// Not a module the walk understands: wazero says why, if it can.
		if cm, werr := w.r.CompileModule(ctx, wasm); werr != nil {
			err = werr
		} else {
			cm.Close(ctx)
		}
		return nil, fmt.Errorf("compile %s: %w: %w", name, ErrInvalidModule, err)
	}
	cm, err := w.r.CompileModule(ctx, prepared)
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w: %w", name, ErrInvalidModule, err)
	}
	if err := errors.Join(append(problems, w.check(cm))...); err != nil {
		cm.Close(ctx)
		return nil, fmt.Errorf("compile %s: %w", name, err)
	}
	r.log.Info("module compiled", "module", name, "bytes", len(wasm), "memory_mb", lim.MemoryMB, "interruptible", ierr == nil, "took", time.Since(start))
	return &Module{name: name, lim: lim, w: w, compiled: cm, log: r.log.With("module", name),
		interruptible: ierr == nil, hasStart: ierr == nil && ins.hasStart}, nil
}

// Name returns the name given to Compile.
func (m *Module) Name() string { return m.name }

// Limits returns the module's limits, with defaults filled in.
func (m *Module) Limits() Limits { return m.lim }

// Close releases the compiled code. Instances already made keep working.
func (m *Module) Close(ctx context.Context) error {
	if err := m.compiled.Close(ctx); err != nil {
		return fmt.Errorf("close module %s: %w", m.name, err)
	}
	return nil
}

// signature is a function type, such as "(i32, i32) -> i32".
type signature struct {
	params, results []api.ValueType
}

func i32s(n int) []api.ValueType {
	return slices.Repeat([]api.ValueType{api.ValueTypeI32}, n)
}

func (s signature) String() string {
	return "(" + typeList(s.params) + ") -> (" + typeList(s.results) + ")"
}

func (s signature) matches(def api.FunctionDefinition) bool {
	return slices.Equal(s.params, def.ParamTypes()) && slices.Equal(s.results, def.ResultTypes())
}

func sigOf(def api.FunctionDefinition) signature {
	return signature{params: def.ParamTypes(), results: def.ResultTypes()}
}

func typeList(ts []api.ValueType) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = api.ValueTypeName(t)
	}
	return strings.Join(names, ", ")
}

// requiredExports are the guest's exported functions of SPEC.md.
var requiredExports = []struct {
	name string
	sig  signature
}{
	{abi.ExportVersion, signature{nil, i32s(1)}},
	{abi.ExportAlloc, signature{i32s(1), i32s(1)}},
	{abi.ExportProcess, signature{i32s(2), i32s(1)}},
}

// check reports every export missing or of the wrong signature and every
// import the host does not provide.
func (w *wruntime) check(cm wazero.CompiledModule) error {
	var errs []error
	exports := cm.ExportedFunctions()
	for _, e := range requiredExports {
		def, ok := exports[e.name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%w: function %s %s", ErrMissingExport, e.name, e.sig))
		case !e.sig.matches(def):
			errs = append(errs, fmt.Errorf("%w: %s is %s, want %s", ErrExportSignature, e.name, sigOf(def), e.sig))
		}
	}
	if init, ok := exports[abi.ExportInitialize]; ok && !(signature{}).matches(init) {
		errs = append(errs, fmt.Errorf("%w: %s is %s, want () -> ()", ErrExportSignature, abi.ExportInitialize, sigOf(init)))
	}
	if _, ok := cm.ExportedMemories()[abi.ExportMemory]; !ok {
		errs = append(errs, fmt.Errorf("%w: memory %q", ErrMissingExport, abi.ExportMemory))
	}
	for _, def := range cm.ImportedFunctions() {
		mod, name, _ := def.Import()
		var want signature
		var ok bool
		switch mod {
		case abi.ImportModule:
			var n int
			n, ok = importParams[name]
			want = signature{i32s(n), i32s(1)}
		case wasi.ModuleName:
			var d api.FunctionDefinition
			if d, ok = w.wasi[name]; ok {
				want = sigOf(d)
			}
		}
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%w: function %s.%s (the host provides the %s functions of the ABI and %s)",
				ErrUnknownImport, mod, name, abi.ImportModule, wasi.ModuleName))
		case !want.matches(def):
			errs = append(errs, fmt.Errorf("%w: %s.%s is %s, want %s", ErrImportSignature, mod, name, sigOf(def), want))
		}
	}
	for _, def := range cm.ImportedMemories() {
		mod, name, _ := def.Import()
		errs = append(errs, fmt.Errorf("%w: memory %s.%s (a guest defines and exports its own memory)", ErrUnknownImport, mod, name))
	}
	return errors.Join(errs...)
}
