package engine_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowstate/flowstate/conformance"
	"github.com/flowstate/flowstate/engine"
	"github.com/flowstate/flowstate/host"
	"github.com/flowstate/flowstate/internal/plugintest"
	"github.com/flowstate/flowstate/internal/poll"
)

// hostile is a module that fails at some point of a task's life, and what
// its failure must say.
type hostile struct {
	name   string
	module string // path of the .wasm file
	value  string // the value of the one record its input gets
	stores []string
	lim    host.Limits
	cause  string // in the task's error
}

// hostileModules returns every hostile module of conformance/testdata that
// passes compilation but fails a task (a trap, a loop or an unsupported ABI
// version at instantiation), those refused at compilation, and the
// engine's test guest failing batches (a trap, a call timeout, a guest
// error under on_error fail), each with the cause its error names.
func hostileModules(t *testing.T) []hostile {
	dir := t.TempDir()
	embedded := func(name string) string {
		b, err := conformance.EmbeddedModule(name)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name+".wasm")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	notWasm := filepath.Join(dir, "script.wasm")
	if err := os.WriteFile(notWasm, []byte("#!/bin/sh\necho hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The test guests' store is "seen", and a store belongs to one
	// pipeline: poison fails before it reads its store, onerror after it
	// wrote.
	onerror := plugintest.Build(t, "engine/testdata/onerror")
	poison := plugintest.Build(t, "engine/testdata/poison")
	short := host.Limits{CallTimeout: 250 * time.Millisecond}
	return []hostile{
		{name: "version2", module: embedded("version2"), cause: host.ErrABIVersion.Error()},
		{name: "inittrap", module: embedded("init_trap"), cause: host.ErrTrap.Error()},
		{name: "initloop", module: embedded("init_loop"), lim: short, cause: host.ErrTimeout.Error()},
		{name: "startloop", module: embedded("start_loop"), lim: short, cause: host.ErrTimeout.Error()},
		{name: "missingexport", module: embedded("missing_export"), cause: host.ErrMissingExport.Error()},
		{name: "unknownimport", module: embedded("import_env"), cause: host.ErrUnknownImport.Error()},
		{name: "bigmemory", module: embedded("big_memory"), lim: host.Limits{MemoryMB: 16}, cause: host.ErrInvalidModule.Error()},
		{name: "notwasm", module: notWasm, cause: host.ErrNotWasm.Error()},
		{name: "trap", module: poison, value: "exit", cause: host.ErrExit.Error()},
		{name: "timeout", module: onerror, value: "loop", stores: []string{"seen"}, lim: short, cause: host.ErrTimeout.Error()},
		{name: "poison", module: poison, value: "poison", cause: "poison record at offset 0"},
	}
}

// errorLog records the messages logged at ERROR, by pipeline.
type errorLog struct {
	slog.Handler
	mu   *sync.Mutex
	msgs map[string][]string
	pl   string // the pipeline attribute of a WithAttrs logger
}

func newErrorLog(next slog.Handler) *errorLog {
	return &errorLog{Handler: next, mu: &sync.Mutex{}, msgs: map[string][]string{}}
}

func (h *errorLog) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelError || h.Handler.Enabled(ctx, l)
}

func (h *errorLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.mu.Lock()
		h.msgs[h.pl] = append(h.msgs[h.pl], r.Message)
		h.mu.Unlock()
	}
	if h.Handler.Enabled(ctx, r.Level) {
		return h.Handler.Handle(ctx, r)
	}
	return nil
}

func (h *errorLog) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.Handler = h.Handler.WithAttrs(as)
	for _, a := range as {
		if a.Key == "pipeline" {
			c.pl = a.Value.String()
		}
	}
	return &c
}

func (h *errorLog) WithGroup(name string) slog.Handler {
	c := *h
	c.Handler = h.Handler.WithGroup(name)
	return &c
}

func (h *errorLog) logged(pipeline, msg string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.msgs[pipeline] {
		if strings.Contains(m, msg) {
			return true
		}
	}
	return false
}

// TestHostileModules runs wordcount beside one pipeline per hostile module,
// all in one engine: wordcount's counts come out complete and correct,
// while every hostile pipeline's task fails, restarts and fails again, at
// ERROR, with an error naming the pipeline, the module and the cause.
func TestHostileModules(t *testing.T) {
	bad := hostileModules(t)
	topics := []string{"sentences", "words", "word-counts", "out"}
	for _, h := range bad {
		topics = append(topics, "bad-"+h.name)
	}
	c := newCluster(t, topics...)
	dir := t.TempDir()
	a := newWordcount(t, c, dir)
	logs := newErrorLog(testLogger(t).Handler())
	a.cfg.Logger = slog.New(logs)
	for _, h := range bad {
		a.cfg.Pipelines = append(a.cfg.Pipelines, engine.Pipeline{
			Name:    h.name,
			Module:  h.module,
			Inputs:  []string{"bad-" + h.name},
			Outputs: []string{"out"},
			Stores:  h.stores,
			Limits:  h.lim,
			Restart: engine.Restart{InitialBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond},
		})
	}
	want := map[string]int64{}
	c.produce(t, "sentences", sentences(rand.New(rand.NewPCG(7, 8)), 2_000, want))
	for _, h := range bad {
		c.produce(t, "bad-"+h.name, [][2]string{{"k", h.value}})
	}

	stop := a.start(t)
	waitOutputs(t, c, want)
	// Every hostile pipeline: a task with its error, restarted, logged at
	// ERROR.
	poll.Until(t, 2*time.Minute, func() error {
		select {
		case err := <-a.failed:
			t.Fatalf("the engine stopped: %v", err)
		default:
		}
		m := a.eng.Metrics()
		var missing []string
	pipelines:
		for _, h := range bad {
			for _, ti := range m.Tasks {
				if ti.Pipeline != h.name || ti.Error == "" || ti.Restarts < 1 {
					continue
				}
				for _, w := range []string{"pipeline " + h.name + " ", "module " + h.module, h.cause} {
					if !strings.Contains(ti.Error, w) {
						t.Fatalf("task %s: error %q does not name %q", ti.Task, ti.Error, w)
					}
				}
				if !logs.logged(h.name, "task FAILED") {
					continue
				}
				continue pipelines
			}
			missing = append(missing, h.name)
		}
		if len(missing) > 0 {
			return fmt.Errorf("no failed and restarted task logged at ERROR for %s", strings.Join(missing, ", "))
		}
		return nil
	})
	for _, ti := range a.eng.Metrics().Tasks {
		if ti.Pipeline == "wordcount" && (ti.State != engine.Running || ti.Error != "") {
			t.Errorf("task %s is %s (%q), want RUNNING", ti.Task, ti.State, ti.Error)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	equalCounts(t, "output counts", outputCounts(t, c), want)
	equalCounts(t, "store counts", storeCounts(t, dir), want)
}

// TestRestartLeaksNothing restarts a task whose module traps in
// _initialize more than 100 times and checks that goroutines, open files
// and memory (Go heap and RSS) stay where they were after the first ten.
func TestRestartLeaksNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a task 100 times")
	}
	b, err := conformance.EmbeddedModule("init_trap")
	if err != nil {
		t.Fatal(err)
	}
	module := filepath.Join(t.TempDir(), "init_trap.wasm")
	if err := os.WriteFile(module, b, 0o644); err != nil {
		t.Fatal(err)
	}
	c := startCluster(t, 1, false, "in", "out")
	a := &app{cfg: engine.Config{
		ApplicationID:  "leak",
		Brokers:        []string{c.addr},
		StateDir:       t.TempDir(),
		CommitInterval: 100 * time.Millisecond,
		Logger:         testLogger(t),
		Pipelines: []engine.Pipeline{{
			Name: "trap", Module: module, Inputs: []string{"in"}, Outputs: []string{"out"}, Stores: []string{"s"},
			Restart: engine.Restart{InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond, JitterFactor: new(0.0)},
		}},
	}}
	stop := a.start(t)
	restarts := func(n int) {
		t.Helper()
		poll.Until(t, 3*time.Minute, func() error {
			for _, ti := range a.eng.Metrics().Tasks {
				if ti.Restarts >= n {
					return nil
				}
			}
			return fmt.Errorf("fewer than %d restarts", n)
		})
	}
	restarts(10)
	before := measure(t)
	restarts(110)
	after := measure(t)
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	t.Logf("after 10 restarts: %+v; after 110: %+v", before, after)
	if d := after.goroutines - before.goroutines; d > 5 {
		t.Errorf("%d more goroutines after 100 restarts", d)
	}
	if d := after.fds - before.fds; d > 5 {
		t.Errorf("%d more open files after 100 restarts", d)
	}
	if d := after.heap - before.heap; d > 16<<20 {
		t.Errorf("Go heap grew by %d bytes over 100 restarts", d)
	}
	if d := after.rss - before.rss; d > 64<<20 {
		t.Errorf("RSS grew by %d bytes over 100 restarts", d)
	}
}

type usage struct {
	goroutines, fds int
	heap, rss       int64
}

// measure returns the process's goroutines, open files, live Go heap after
// a collection and resident memory.
func measure(t *testing.T) usage {
	t.Helper()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	statm, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(statm))
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		t.Fatal(errors.Join(err, fmt.Errorf("statm %q", statm)))
	}
	return usage{goroutines: runtime.NumGoroutine(), fds: len(fds), heap: int64(ms.HeapAlloc), rss: pages * int64(os.Getpagesize())}
}
