// Package flowstatehost runs the conformance suites against flowstate's
// own host: package host on RocksDB stores from package state.
package flowstatehost

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/flowstate/flowstate/abi"
	"github.com/flowstate/flowstate/conformance"
	"github.com/flowstate/flowstate/host"
	"github.com/flowstate/flowstate/state"
)

// Host is conformance.Host for flowstate's host. Each Load gets its own
// RocksDB database under the directory given to New, deleted by the
// instance's Close. A module is compiled once per distinct limits, as a
// pipeline's is, and kept until Close. It is safe for concurrent use.
type Host struct {
	dir    string
	rt     *host.Runtime
	budget *state.Budget
	next   atomic.Int64

	mu       sync.Mutex
	compiled map[string]*host.Module // by moduleKey
}

var _ conformance.Host = (*Host)(nil)

// New makes a Host keeping its stores under dir, which must exist. Close it
// when done.
func New(ctx context.Context, dir string) (*Host, error) {
	rt, err := host.NewRuntime(ctx, host.RuntimeConfig{})
	if err != nil {
		return nil, err
	}
	budget, err := state.NewBudget(state.BudgetConfig{BlockCacheMB: 8, WriteBufferMB: 8})
	if err != nil {
		rt.Close(ctx)
		return nil, err
	}
	return &Host{dir: dir, rt: rt, budget: budget, compiled: map[string]*host.Module{}}, nil
}

// Close releases the runtime and the compiled modules, after every
// instance is closed.
func (h *Host) Close(ctx context.Context) error {
	err := h.rt.Close(ctx) // closes the modules too
	h.budget.Close()
	return err
}

// compile returns the module compiled from wasm with the limits of setup,
// compiling it on first use.
func (h *Host) compile(ctx context.Context, wasm []byte, setup conformance.Setup) (*host.Module, error) {
	l := setup.Limits
	sum := sha256.Sum256(wasm)
	key := fmt.Sprintf("%s %x %+v", setup.Name, sum, l)
	h.mu.Lock()
	defer h.mu.Unlock()
	if m, ok := h.compiled[key]; ok {
		return m, nil
	}
	m, err := h.rt.Compile(ctx, setup.Name, wasm, host.Limits{
		MemoryMB:         l.MemoryMB,
		CallTimeout:      l.CallTimeout,
		MaxOutputRecords: l.MaxOutputRecords,
		MaxOutputBytes:   l.MaxOutputBytes,
		MaxKeyBytes:      l.MaxKeyBytes,
		MaxValueBytes:    l.MaxValueBytes,
		MaxOpenIterators: l.MaxOpenIterators,
	})
	if err != nil {
		return nil, err
	}
	h.compiled[key] = m
	return m, nil
}

// Load implements conformance.Host.
func (h *Host) Load(ctx context.Context, wasm []byte, setup conformance.Setup) (conformance.Instance, error) {
	m, err := h.compile(ctx, wasm, setup)
	if err != nil {
		return nil, classify(err)
	}
	i := &instance{dir: filepath.Join(h.dir, "load-"+strconv.FormatInt(h.next.Add(1), 10))}
	if i.db, err = state.Open(state.Config{Dir: i.dir, Stores: setup.Stores, Budget: h.budget}); err != nil {
		i.Close(ctx)
		return nil, err
	}
	for _, e := range setup.Seed {
		id, ok := i.db.StoreID(e.Store)
		if !ok {
			i.Close(ctx)
			return nil, fmt.Errorf("seed: no store %q", e.Store)
		}
		if err := i.db.Put(id, e.Key, e.Value); err != nil {
			i.Close(ctx)
			return nil, err
		}
	}
	log := slog.New(&i.logs)
	if i.inst, err = m.Instantiate(ctx, host.InstanceConfig{DB: i.db, Stores: setup.Stores, Topics: setup.Topics, Logger: log}); err != nil {
		i.Close(ctx)
		return nil, classify(err)
	}
	return i, nil
}

type instance struct {
	dir  string
	db   *state.DB
	inst *host.Instance
	logs logs
}

func (i *instance) Process(ctx context.Context, recs []abi.Record) ([]conformance.Output, error) {
	outs, err := i.inst.Process(ctx, recs, nil)
	if err != nil {
		return nil, classify(err)
	}
	res := make([]conformance.Output, len(outs))
	for k, o := range outs {
		res[k] = conformance.Output{Topic: o.Topic, Key: o.Key, Value: o.Value, Headers: o.Headers}
	}
	return res, nil
}

func (i *instance) Entries(_ context.Context, store string) ([]conformance.Entry, error) {
	id, ok := i.db.StoreID(store)
	if !ok {
		return nil, fmt.Errorf("no store %q", store)
	}
	it, err := i.db.Range(id, nil, nil)
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var es []conformance.Entry
	for it.Next() {
		es = append(es, conformance.Entry{Key: clone(it.Key()), Value: clone(it.Value())})
	}
	return es, it.Err()
}

func clone(b []byte) []byte { return append([]byte{}, b...) }

func (i *instance) Logs() []conformance.Log { return i.logs.all() }

func (i *instance) Close(ctx context.Context) error {
	var errs []error
	if i.inst != nil {
		errs = append(errs, i.inst.Close(ctx))
	}
	if i.db != nil {
		errs = append(errs, i.db.Close())
	}
	errs = append(errs, os.RemoveAll(i.dir))
	return errors.Join(errs...)
}

// classify turns the host's errors into *conformance.Failure; others are
// returned as they are.
func classify(err error) error {
	f := &conformance.Failure{Detail: err.Error()}
	if ge, ok := errors.AsType[*host.GuestError](err); ok {
		f.Code, f.Message = ge.Code, ge.Message
		if ge.Err == nil {
			f.Kind = conformance.GuestFailed
			return f
		}
	}
	for _, k := range kinds {
		if errors.Is(err, k.err) {
			f.Kind = k.kind
			return f
		}
	}
	return err
}

// kinds maps the host's sentinels to failure kinds, the most telling first.
var kinds = []struct {
	err  error
	kind conformance.Kind
}{
	{host.ErrNotWasm, conformance.NotWasm},
	{host.ErrMissingExport, conformance.MissingExport},
	{host.ErrExportSignature, conformance.ExportSignature},
	{host.ErrUnknownImport, conformance.UnknownImport},
	{host.ErrImportSignature, conformance.ImportSignature},
	{host.ErrInvalidModule, conformance.InvalidModule},
	{host.ErrABIVersion, conformance.ABIVersion},
	{host.ErrTimeout, conformance.Timeout},
	{host.ErrTrap, conformance.Trap},
	{host.ErrExit, conformance.Exit},
	{host.ErrOutOfMemory, conformance.OutOfMemory},
	{host.ErrOutputRefused, conformance.OutputRefused},
	{host.ErrInternal, conformance.Internal},
}

// logs is a slog.Handler keeping the guest's log calls (the records the
// host logs with source=guest).
type logs struct {
	mu   sync.Mutex
	list []conformance.Log
}

func (l *logs) Enabled(context.Context, slog.Level) bool { return true }

func (l *logs) Handle(_ context.Context, r slog.Record) error {
	guest := false
	r.Attrs(func(a slog.Attr) bool {
		guest = a.Key == "source" && a.Value.String() == "guest"
		return !guest
	})
	if guest {
		l.mu.Lock()
		l.list = append(l.list, conformance.Log{Level: int32(r.Level), Message: r.Message})
		l.mu.Unlock()
	}
	return nil
}

func (l *logs) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logs) WithGroup(string) slog.Handler      { return l }

func (l *logs) all() []conformance.Log {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]conformance.Log(nil), l.list...)
}
