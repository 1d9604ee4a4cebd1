package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	wasi "github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// RuntimeConfig configures a Runtime.
type RuntimeConfig struct {
	// CacheDir is the directory of wazero's compilation cache, created if
	// missing, so that a restart skips compiling an unchanged module (about
	// 0.65 s for a 1.8 MB Go guest). Empty keeps the cache in memory.
	CacheDir string
	// Logger receives lifecycle events. Nil discards them.
	Logger *slog.Logger
	// ContextCheck compiles every module with wazero's context check at
	// each loop header instead of flowstate's loop instrumentation
	// (interrupt.go), which is several times faster for a Go guest. Both
	// stop a guest call at its timeout; this is the slower, simpler one,
	// for comparison.
	ContextCheck bool
}

// Runtime compiles modules and holds what their instances share: one
// compilation cache, and one wazero runtime per distinct memory limit (wazero
// sets the memory limit per runtime), each with wasi_snapshot_preview1.
// It is safe for concurrent use.
type Runtime struct {
	log          *slog.Logger
	cache        wazero.CompilationCache
	contextCheck bool // RuntimeConfig.ContextCheck

	mu     sync.Mutex
	rts    map[runtimeKey]*wruntime
	closed bool
}

// runtimeKey tells wazero runtimes apart: by memory limit, and by whether
// compiled code checks the context at loop headers (for modules that
// instrument, interrupt.go, cannot rewrite).
type runtimeKey struct {
	pages        uint32
	contextCheck bool
}

// wruntime is one wazero runtime and what the module checks need of it.
type wruntime struct {
	r wazero.Runtime
	// wasi holds the functions of wasi_snapshot_preview1, for checking the
	// imports of a module.
	wasi map[string]api.FunctionDefinition
}

// NewRuntime creates a Runtime. Close it to release compiled code.
func NewRuntime(ctx context.Context, cfg RuntimeConfig) (*Runtime, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cache := wazero.NewCompilationCache()
	if cfg.CacheDir != "" {
		var err error
		if cache, err = wazero.NewCompilationCacheWithDir(cfg.CacheDir); err != nil {
			return nil, fmt.Errorf("compilation cache %s: %w", cfg.CacheDir, err)
		}
	}
	return &Runtime{log: log, cache: cache, contextCheck: cfg.ContextCheck, rts: make(map[runtimeKey]*wruntime)}, nil
}

// Close closes every wazero runtime, and with them every module and
// instance of this Runtime, then the compilation cache. It is idempotent.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	var errs []error
	for _, w := range r.rts {
		errs = append(errs, w.r.Close(ctx))
	}
	r.rts = nil
	errs = append(errs, r.cache.Close(ctx))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close runtime: %w", err)
	}
	return nil
}

// runtime returns the wazero runtime for a memory limit, creating it on
// first use. With contextCheck, compiled code checks for a done context at
// every loop header, so that a call past its deadline stops even in a loop
// without host calls; without, the module must be instrumented
// (interrupt.go), which does the same at a fraction of the cost.
func (r *Runtime) runtime(ctx context.Context, pages uint32, contextCheck bool) (*wruntime, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	key := runtimeKey{pages, contextCheck}
	if w, ok := r.rts[key]; ok {
		return w, nil
	}
	cfg := wazero.NewRuntimeConfig().
		WithCompilationCache(r.cache).
		WithMemoryLimitPages(pages).
		WithCloseOnContextDone(contextCheck)
	wr := wazero.NewRuntimeWithConfig(ctx, cfg)
	w, err := newWruntime(ctx, wr)
	if err != nil {
		wr.Close(ctx)
		return nil, fmt.Errorf("wazero runtime: %w", err)
	}
	r.rts[key] = w
	return w, nil
}

func newWruntime(ctx context.Context, wr wazero.Runtime) (*wruntime, error) {
	// wasi_snapshot_preview1 is compiled explicitly, rather than with
	// wasi.Instantiate, to learn its function signatures. Its functions act
	// on the calling module's system context: each instance's own
	// ModuleConfig decides its stdout, clocks and randomness.
	b := wr.NewHostModuleBuilder(wasi.ModuleName)
	wasi.NewFunctionExporter().ExportFunctions(b)
	cm, err := b.Compile(ctx)
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", wasi.ModuleName, err)
	}
	if _, err := wr.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithStartFunctions()); err != nil {
		return nil, fmt.Errorf("instantiate %s: %w", wasi.ModuleName, err)
	}
	return &wruntime{r: wr, wasi: cm.ExportedFunctions()}, nil
}
