package engine_test

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowstate/flowstate/engine"
	"github.com/flowstate/flowstate/internal/plugintest"
	"github.com/flowstate/flowstate/internal/poll"
	"github.com/flowstate/flowstate/restore"
	"github.com/flowstate/flowstate/state"
)

// The tests of this file run the poison test guest (it counts records per
// key in store "seen" and emits each count to "out") as application "rst",
// on a broker whose topics have rigPartitions partitions and that allows
// short group session timeouts, so that rebalances take a fraction of a
// second.
const (
	rigApp        = "rst"
	rigChangelog  = "rst-seen-changelog"
	rigPartitions = 2
)

// rig is one test's broker, with a producer that writes to the partition
// set on each record.
type rig struct{ *cluster }

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{startCluster(t, rigPartitions, true, "in", "out")}
	compact := "compact"
	if _, err := r.adm.CreateTopic(t.Context(), rigPartitions, -1, map[string]*string{"cleanup.policy": &compact}, rigChangelog); err != nil {
		t.Fatal(err)
	}
	return r
}

// config is the engine config of the application, its state in dir.
func (r *rig) config(t *testing.T, dir string) engine.Config {
	return engine.Config{
		ApplicationID:  rigApp,
		Brokers:        []string{r.addr},
		StateDir:       dir,
		CommitInterval: 50 * time.Millisecond,
		SessionTimeout: 1500 * time.Millisecond,
		Logger:         testLogger(t),
		// Small fetches and SST chunks: a fresh store's restore takes many
		// batches, which the tests hold and interrupt.
		Restore: restore.Settings{FetchMaxBytes: 8 << 10, SSTChunkBytes: 16 << 10},
		Pipelines: []engine.Pipeline{{
			Name:    rigApp,
			Module:  plugintest.Build(t, "engine/testdata/poison"),
			Inputs:  []string{"in"},
			Outputs: []string{"out"},
			Stores:  []string{"seen"},
		}},
	}
}

// produce writes records with keys prefix0..prefix<n-1> to partition p of
// topic; changelog values are counts of 1, input values "v".
func (r *rig) produce(t *testing.T, topic string, p int32, prefix string, n int) {
	t.Helper()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		v := []byte("v")
		if topic == rigChangelog {
			v = binary.BigEndian.AppendUint64(nil, 1)
		}
		recs[i] = &kgo.Record{Topic: topic, Partition: p, Key: []byte(prefix + strconv.Itoa(i)), Value: v}
	}
	// Chunks of 500, each produced before the next, make at least n/500
	// record batches: a restore with a small fetch size then takes many
	// fetches whatever the producer's linger would have batched.
	for chunk := range slices.Chunk(recs, 500) {
		if err := r.cl.ProduceSync(t.Context(), chunk...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// watch consumes topic from its start until the test ends and returns a
// function reporting whether key has been seen.
func (r *rig) watch(t *testing.T, topic string) (seen func(key string) bool) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var mu sync.Mutex
	keys := map[string]bool{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(rec *kgo.Record) {
				mu.Lock()
				keys[string(rec.Key)] = true
				mu.Unlock()
			})
		}
	}()
	t.Cleanup(func() { cancel(); <-done; cl.Close() })
	return func(key string) bool {
		mu.Lock()
		defer mu.Unlock()
		return keys[key]
	}
}

// deleteRecords deletes the changelog records of partition p before to.
func (r *rig) deleteRecords(t *testing.T, p int32, to int64) {
	t.Helper()
	os := kadm.Offsets{}
	os.AddOffset(rigChangelog, p, to, -1)
	resp, err := r.adm.DeleteRecords(t.Context(), os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("delete records: %v", err)
	}
}

// running is an engine of a test, run in this process.
type running struct {
	e      *engine.Engine
	cancel context.CancelFunc
	done   chan struct{} // closed when Run has returned err
	err    error
}

// startEngine runs an engine with cfg and l until the test ends or stop.
func startEngine(t *testing.T, cfg engine.Config, l engine.Listener) *running {
	t.Helper()
	e, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.SetListener(l)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{e: e, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = e.Run(ctx)
	}()
	t.Cleanup(func() { r.stop() })
	return r
}

// stop stops the engine and returns Run's error.
func (r *running) stop() error {
	r.cancel()
	return r.wait()
}

// wait waits for Run to return, at most a minute, and returns its error.
func (r *running) wait() error {
	select {
	case <-r.done:
		return r.err
	case <-time.After(time.Minute):
		return errors.New("engine did not stop within a minute")
	}
}

// task returns the snapshot of one task; ok is false if the engine has no
// such task.
func (r *running) task(name string) (engine.TaskInfo, bool) {
	for _, ti := range r.e.Metrics().Tasks {
		if ti.Task == name {
			return ti, true
		}
	}
	return engine.TaskInfo{}, false
}

// waitFor polls cond until it holds, failing the test after 30 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 30*time.Second, func() error {
		if !cond() {
			return errors.New("timed out waiting until " + what)
		}
		return nil
	})
}

// recv waits until ch is closed, at most 30s.
func recv(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting until %s", what)
	}
}

// waitState waits until the named task is in state s.
func (r *running) waitState(t *testing.T, name string, s engine.TaskState) {
	t.Helper()
	waitFor(t, name+" is "+s.String(), func() bool {
		ti, ok := r.task(name)
		return ok && ti.State == s
	})
}

// restoreLog collects the restore events of some tasks.
type restoreLog struct {
	mu     sync.Mutex
	begins map[string][]restore.BeginInfo
	ends   map[string][]restore.EndInfo
}

func newRestoreLog() *restoreLog {
	return &restoreLog{begins: map[string][]restore.BeginInfo{}, ends: map[string][]restore.EndInfo{}}
}

func (l *restoreLog) begin(b restore.BeginInfo) {
	l.mu.Lock()
	l.begins[b.Task] = append(l.begins[b.Task], b)
	l.mu.Unlock()
}

func (l *restoreLog) end(i restore.EndInfo) {
	l.mu.Lock()
	l.ends[i.Task] = append(l.ends[i.Task], i)
	l.mu.Unlock()
}

func (l *restoreLog) lastEnd(task string) (restore.EndInfo, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.ends[task]
	if len(e) == 0 {
		return restore.EndInfo{}, false
	}
	return e[len(e)-1], true
}

func (l *restoreLog) count(task string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ends[task])
}

func (l *restoreLog) lastBegin(task string) (restore.BeginInfo, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.begins[task]
	if len(b) == 0 {
		return restore.BeginInfo{}, false
	}
	return b[len(b)-1], true
}

// TestRestoreDoesNotBlockRunningTasks restores a large changelog for task
// rst/0 while rst/1 has nothing to restore: rst/1's outputs arrive while
// rst/0 is held RESTORING by the listener, and rst/0's input waits until it
// runs. The metrics snapshot shows the restore in progress and, after it,
// its totals.
func TestRestoreDoesNotBlockRunningTasks(t *testing.T) {
	const changelog = 20_000
	r := newRig(t)
	r.produce(t, rigChangelog, 0, "c", changelog)
	r.produce(t, "in", 0, "a", 1)
	r.produce(t, "in", 1, "b", 1)
	out := r.watch(t, "out")

	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	e := startEngine(t, r.config(t, t.TempDir()), engine.Listener{Restore: restore.Listener{
		Batch: func(b restore.BatchInfo) {
			if b.Task != "rst/0" {
				return
			}
			once.Do(func() {
				close(held)
				select {
				case <-release:
				case <-t.Context().Done():
				}
			})
		},
	}})
	recv(t, "the restore is held", held)
	waitFor(t, "rst/1's output arrives", func() bool { return out("b0") })

	// rst/0 is still held in its restore.
	m := e.e.Metrics()
	ti, _ := e.task("rst/0")
	if ti.State != engine.Restoring || ti.Restore.Restored <= 0 || ti.Restore.Remaining <= 0 || ti.Restore.Rate <= 0 {
		t.Errorf("rst/0 while held: %+v, want RESTORING with records restored and remaining and a rate", ti)
	}
	if ti, _ := e.task("rst/1"); ti.State != engine.Running {
		t.Errorf("rst/1 is %s, want RUNNING", ti.State)
	}
	if got := m.Restore; got.Tasks != 1 || got.Remaining != ti.Restore.Remaining || got.Records != ti.Restore.Restored || got.Rate <= 0 {
		t.Errorf("restore metrics while held: %+v, want 1 task and rst/0's numbers", got)
	}
	if out("a0") {
		t.Error("rst/0's input was processed while it restored")
	}

	close(release)
	e.waitState(t, "rst/0", engine.Running)
	waitFor(t, "rst/0's output arrives", func() bool { return out("a0") })

	// The snapshot after the restore.
	m = e.e.Metrics()
	want := engine.RestoreMetrics{Records: changelog, Restores: rigPartitions, Duration: m.Restore.Duration, Bytes: m.Restore.Bytes}
	if m.Restore != want || m.Restore.Duration <= 0 || m.Restore.Bytes <= 0 {
		t.Errorf("restore metrics after the restore: %+v, want %+v with a duration and bytes", m.Restore, want)
	}
	if len(m.Pipelines) != 1 || m.Pipelines[0].Pipeline != rigApp || m.Pipelines[0].Restore != m.Restore {
		t.Errorf("pipeline metrics %+v, want one pipeline %s with the totals", m.Pipelines, rigApp)
	}
	if len(m.Tasks) != rigPartitions {
		t.Fatalf("metrics list %d tasks, want %d", len(m.Tasks), rigPartitions)
	}
	ti = m.Tasks[0]
	if ti.Task != "rst/0" || ti.Pipeline != rigApp || ti.Partition != 0 || ti.State != engine.Running {
		t.Errorf("first task %+v, want rst/0 RUNNING", ti)
	}
	if rs := ti.Restore; rs.Restored != changelog || rs.Remaining != 0 || rs.ETA != 0 || rs.Rate != 0 || rs.Took <= 0 || rs.Waiting {
		t.Errorf("rst/0's restore %+v, want %d restored, 0 remaining, a duration", rs, changelog)
	}
	if err := e.stop(); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreResumes stops the engine while rst/0's restore is held after
// three batches, then restarts it: the second restore begins at the offset
// the first one reached, and the two together replay the changelog once.
func TestRestoreResumes(t *testing.T) {
	const changelog = 20_000
	r := newRig(t)
	r.produce(t, rigChangelog, 0, "c", changelog)
	cfg := r.config(t, t.TempDir())

	log1 := newRestoreLog()
	held, release, otherClosed := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var batches int
	var closeOnce sync.Once
	e := startEngine(t, cfg, engine.Listener{
		Restore: restore.Listener{
			Begin: log1.begin,
			End:   log1.end,
			Batch: func(b restore.BatchInfo) {
				if b.Task != "rst/0" {
					return
				}
				if batches++; batches == 3 {
					close(held)
					select {
					case <-release:
					case <-t.Context().Done():
					}
				}
			},
		},
		TaskState: func(task string, s engine.TaskState) {
			if task != "rst/0" && s == engine.Closed {
				closeOnce.Do(func() { close(otherClosed) })
			}
		},
	})
	recv(t, "the restore is held", held)
	stopped := make(chan error, 1)
	go func() { stopped <- e.stop() }()
	// The engine cancels every restore before it stops any task, so once
	// another task has closed, rst/0's restore ends at its next fetch.
	recv(t, "another task closes", otherClosed)
	close(release)
	if err := <-stopped; err != nil {
		t.Fatalf("stop: %v", err)
	}
	first, ok := log1.lastEnd("rst/0")
	if !ok || !errors.Is(first.Err, context.Canceled) || first.Restored <= 0 || first.Restored >= changelog {
		t.Fatalf("first restore ended with %+v, want canceled midway", first)
	}

	log2 := newRestoreLog()
	e = startEngine(t, cfg, engine.Listener{Restore: restore.Listener{Begin: log2.begin, End: log2.end}})
	e.waitState(t, "rst/0", engine.Running)
	begin, _ := log2.lastBegin("rst/0")
	second, _ := log2.lastEnd("rst/0")
	if got := begin.Start[rigChangelog]; got != first.Restored {
		t.Errorf("second restore began at offset %d, want %d (where the first stopped)", got, first.Restored)
	}
	if got := first.Restored + second.Restored; got != changelog {
		t.Errorf("the restores replayed %d + %d = %d records, want %d", first.Restored, second.Restored, got, changelog)
	}
	if err := e.stop(); err != nil {
		t.Fatal(err)
	}
}

// TestTruncatedChangelog deletes, with the engine stopped, changelog
// records after rst/0's stored offset: rebuild clears the store and
// restores from the log start, fail fails the task (and, under on_failure
// stop_process, the engine) with a *restore.TruncatedError and leaves the
// store alone.
func TestTruncatedChangelog(t *testing.T) {
	for _, policy := range []restore.TruncatedPolicy{restore.TruncatedRebuild, restore.TruncatedFail} {
		t.Run(string(policy), func(t *testing.T) {
			r := newRig(t)
			dir := t.TempDir()
			cfg := r.config(t, dir)
			out := r.watch(t, "out")
			r.produce(t, "in", 0, "a", 10) // 10 keys: 10 changelog records
			e := startEngine(t, cfg, engine.Listener{})
			waitFor(t, "the inputs are processed", func() bool { return out("a9") })
			if err := e.stop(); err != nil {
				t.Fatal(err)
			}
			// Offsets 10..14 are written by someone else and 10..11
			// deleted: the store (at 10) never saw them.
			r.produce(t, rigChangelog, 0, "x", 5)
			r.deleteRecords(t, 0, 12)

			logs := newRestoreLog()
			rec := &logRecorder{}
			cfg.Logger = slog.New(rec)
			cfg.Restore.OnTruncated = policy
			if policy == restore.TruncatedFail {
				// The task fails; under stop_process the engine stops with
				// its error.
				cfg.Pipelines[0].OnFailure = engine.OnFailureStopProcess
			}
			e = startEngine(t, cfg, engine.Listener{Restore: restore.Listener{End: logs.end}})
			taskDir := filepath.Join(dir, rigApp, "rst-0")
			if policy == restore.TruncatedFail {
				err := e.wait()
				te, ok := errors.AsType[*restore.TruncatedError](err)
				if !ok {
					t.Fatalf("Run = %v, want a *restore.TruncatedError", err)
				}
				if te.Store != "seen" || te.Stored != 10 || te.LogStart != 12 || te.Partition != 0 {
					t.Errorf("error %+v, want store seen, stored 10, log start 12", te)
				}
				if got := storeKeys(t, taskDir); len(got) != 10 || got[0] != "a0" {
					t.Errorf("store after the failure holds %v, want a0..a9", got)
				}
				return
			}
			e.waitState(t, "rst/0", engine.Running)
			if end, _ := logs.lastEnd("rst/0"); end.Restored != 3 {
				t.Errorf("rebuild restored %d records, want 3 (offsets 12..14)", end.Restored)
			}
			if err := e.stop(); err != nil {
				t.Fatal(err)
			}
			if got, want := storeKeys(t, taskDir), []string{"x2", "x3", "x4"}; !slices.Equal(got, want) {
				t.Errorf("rebuilt store holds %v, want %v", got, want)
			}
			if !rec.has("WARN", "changelog truncated", "store=seen", "stored_offset=10", "log_start=12") {
				t.Error("no warning about the truncated changelog")
			}
		})
	}
}

// TestStateCleanupDelay moves task rst/1 to a second engine and back. Within
// the delay the first engine restores nothing when it comes back; with a
// tiny delay its directory is deleted while the task is away (and it
// restores everything when it comes back), as is a directory left by an
// earlier run that no task takes. A directory in use is never deleted.
func TestStateCleanupDelay(t *testing.T) {
	for _, tc := range []struct {
		name  string
		delay time.Duration
	}{
		{"back within the delay", time.Hour},
		{"away longer than the delay", 50 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			dir := t.TempDir()
			out := r.watch(t, "out")
			r.produce(t, "in", 0, "a", 5)
			r.produce(t, "in", 1, "b", 5)
			stale := filepath.Join(dir, rigApp, "rst-7") // no such partition
			if err := os.MkdirAll(stale, 0o755); err != nil {
				t.Fatal(err)
			}

			cfg := r.config(t, dir)
			cfg.StateCleanupDelay = tc.delay
			logs := newRestoreLog()
			a := startEngine(t, cfg, engine.Listener{Restore: restore.Listener{Begin: logs.begin, End: logs.end}})
			waitFor(t, "the inputs are processed", func() bool { return out("a4") && out("b4") })
			task1 := filepath.Join(dir, rigApp, "rst-1")

			// A second engine takes one of the two partitions.
			b := startEngine(t, r.config(t, t.TempDir()), engine.Listener{})
			var moved string
			waitFor(t, "a task moves to the second engine", func() bool {
				for _, ti := range b.e.Metrics().Tasks {
					if ti.State == engine.Running {
						moved = ti.Task
						return true
					}
				}
				return false
			})
			movedDir := filepath.Join(dir, rigApp, "rst-"+moved[len("rst/"):])
			keptDir := filepath.Join(dir, rigApp, "rst-0")
			if movedDir == keptDir {
				keptDir = task1
			}
			if tc.delay < time.Minute {
				waitFor(t, "the moved task's directory is deleted", func() bool { return !exists(movedDir) })
				waitFor(t, "the stale directory is deleted", func() bool { return !exists(stale) })
			} else if _, err := os.Stat(filepath.Join(movedDir, "closed-at")); err != nil {
				t.Errorf("the moved task's directory has no close time: %v", err)
			}
			if err := b.stop(); err != nil {
				t.Fatal(err)
			}

			a.waitState(t, moved, engine.Running)
			waitFor(t, moved+" restored", func() bool {
				_, ok := logs.lastEnd(moved)
				return ok && logs.count(moved) == 2
			})
			back, _ := logs.lastEnd(moved)
			begin, _ := logs.lastBegin(moved)
			if tc.delay < time.Minute {
				if back.Restored != 5 || begin.Start[rigChangelog] != 0 {
					t.Errorf("back after its directory was deleted, %s restored %d records from offset %d, want 5 from 0", moved, back.Restored, begin.Start[rigChangelog])
				}
			} else {
				if back.Restored != 0 {
					t.Errorf("back within the delay, %s restored %d records, want 0", moved, back.Restored)
				}
				if !exists(stale) {
					t.Error("a stale directory was deleted before the delay")
				}
			}
			if !exists(keptDir) || !exists(movedDir) {
				t.Error("a directory in use was deleted")
			}
			if err := a.stop(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// storeKeys returns the keys of store seen in the task directory dir.
func storeKeys(t *testing.T, dir string) []string {
	t.Helper()
	db, err := state.Open(state.Config{Dir: dir, Stores: []string{"seen"}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	it, err := db.Range(0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var keys []string
	for it.Next() {
		keys = append(keys, string(it.Key()))
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return keys
}

// logRecorder is a slog.Handler keeping every line as text.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &attrRecorder{r: r, attrs: as}
}
func (r *logRecorder) WithGroup(string) slog.Handler { return r }
func (r *logRecorder) Handle(ctx context.Context, rec slog.Record) error {
	return (&attrRecorder{r: r}).Handle(ctx, rec)
}

// has reports whether a line contains every one of parts.
func (r *logRecorder) has(parts ...string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.lines {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			return true
		}
	}
	return false
}

type attrRecorder struct {
	r     *logRecorder
	attrs []slog.Attr
}

func (a *attrRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (a *attrRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &attrRecorder{r: a.r, attrs: append(slices.Clone(a.attrs), as...)}
}
func (a *attrRecorder) WithGroup(string) slog.Handler { return a }
func (a *attrRecorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Level.String() + " " + rec.Message)
	for _, at := range a.attrs {
		b.WriteString(" " + at.String())
	}
	rec.Attrs(func(at slog.Attr) bool {
		b.WriteString(" " + at.String())
		return true
	})
	a.r.mu.Lock()
	a.r.lines = append(a.r.lines, b.String())
	a.r.mu.Unlock()
	return nil
}
