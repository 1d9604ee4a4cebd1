package engine_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowstate/flowstate/engine"
	"github.com/flowstate/flowstate/internal/plugintest"
	"github.com/flowstate/flowstate/internal/poll"
	"github.com/flowstate/flowstate/restore"
	"github.com/flowstate/flowstate/state"
)

const partitions = 4

// cluster is an in-process kfake broker for one test.
type cluster struct {
	addr  string
	cl    *kgo.Client
	adm   *kadm.Client
	parts int32 // of the topics it was started with
}

// newCluster starts a broker with topics of partitions partitions each; its
// client spreads records over partitions by key.
func newCluster(t testing.TB, topics ...string) *cluster {
	return startCluster(t, partitions, false, topics...)
}

// startCluster starts a broker with topics of parts partitions each, which
// allows short group session timeouts so that rebalances take a fraction
// of a second. With manual set, its client writes each record to the
// partition set on it.
func startCluster(t testing.TB, parts int32, manual bool, topics ...string) *cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(parts, topics...),
		kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addr := c.ListenAddrs()[0]
	opts := []kgo.Opt{kgo.SeedBrokers(addr)}
	if manual {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &cluster{addr: addr, cl: cl, adm: kadm.NewClient(cl), parts: parts}
}

// produce writes each value with its key, spread over partitions by key.
func (c *cluster) produce(t testing.TB, topic string, kvs [][2]string) {
	t.Helper()
	recs := make([]*kgo.Record, len(kvs))
	for i, kv := range kvs {
		recs[i] = &kgo.Record{Topic: topic, Key: []byte(kv[0]), Value: []byte(kv[1])}
	}
	if err := c.cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// waitDone waits until the group has committed the end offset of every
// partition of topics, in order: a topic written by the application itself
// comes after the topics it is computed from.
func (c *cluster) waitDone(t testing.TB, group string, topics ...string) {
	t.Helper()
	poll.Until(t, 2*time.Minute, func() error {
		if done, status := c.committedAll(t, group, topics); !done {
			return fmt.Errorf("group %s did not catch up: %s", group, status)
		}
		return nil
	})
}

func (c *cluster) committedAll(t testing.TB, group string, topics []string) (bool, string) {
	committed, err := c.adm.FetchOffsets(t.Context(), group)
	if err != nil {
		return false, err.Error()
	}
	for _, topic := range topics {
		ends, err := c.adm.ListEndOffsets(t.Context(), topic)
		if err != nil {
			return false, err.Error()
		}
		var behind []string
		ends.Each(func(o kadm.ListedOffset) {
			got, ok := committed.Lookup(topic, o.Partition)
			if o.Offset > 0 && (!ok || got.At < o.Offset) {
				behind = append(behind, fmt.Sprintf("%s/%d at %d of %d", topic, o.Partition, got.At, o.Offset))
			}
		})
		if len(behind) > 0 {
			return false, strings.Join(behind, ", ")
		}
	}
	return true, ""
}

// latest reads topic, read_committed, from the start to its last stable
// offset and returns the last value of each key.
func (c *cluster) latest(t testing.TB, topic string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, r := range c.readAll(t, topic) {
		out[string(r.Key)] = string(r.Value)
	}
	return out
}

// readAll reads topic, read_committed, from the start to its last stable
// offset.
func (c *cluster) readAll(t testing.TB, topic string) []*kgo.Record {
	t.Helper()
	ends, err := c.adm.ListCommittedOffsets(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %s: %v (left %v)", topic, err, want)
		}
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			for _, r := range p.Records {
				if r.Offset < want[r.Partition] {
					out = append(out, r)
				}
			}
			// The last stable offset may be a transaction marker, which
			// is never returned: the fetch's position says where it is.
			if p.LastStableOffset >= want[p.Partition] || (len(p.Records) > 0 && p.Records[len(p.Records)-1].Offset+1 >= want[p.Partition]) {
				delete(want, p.Partition)
			}
		})
	}
	return out
}

// app is one flowstate process of a test, run in this process.
type app struct {
	cfg      engine.Config
	mu       sync.Mutex
	restored map[string]int64 // task -> records replayed by its last restore
	running  map[string]bool  // task -> in state RUNNING
	failed   chan error       // Run's error, when it returns before stop
	setup    func(*engine.Engine)
	eng      *engine.Engine          // of the last start
	listen   func(engine.CommitInfo) // receives every commit, when set
}

func newWordcount(t testing.TB, c *cluster, stateDir string) *app {
	t.Helper()
	return &app{cfg: engine.Config{
		ApplicationID:  "wordcount",
		Brokers:        []string{c.addr},
		StateDir:       stateDir,
		CommitInterval: 200 * time.Millisecond,
		Logger:         testLogger(t),
		Pipelines: []engine.Pipeline{{
			Name:    "wordcount",
			Module:  plugintest.Build(t, "plugins/wordcount"),
			Inputs:  []string{"sentences", "words"},
			Outputs: []string{"words", "word-counts"},
			Stores:  []string{"counts"},
		}},
	}}
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

// start runs the engine until the returned stop is called; stop returns
// Run's error.
func (a *app) start(t testing.TB) (stop func() error) {
	t.Helper()
	a.restored = map[string]int64{}
	a.running = map[string]bool{}
	e, err := engine.New(a.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a.setup != nil {
		a.setup(e)
	}
	a.eng = e
	e.SetListener(engine.Listener{
		Restore: restore.Listener{End: func(i restore.EndInfo) {
			a.mu.Lock()
			a.restored[i.Task] += i.Restored
			a.mu.Unlock()
		}},
		TaskState: func(task string, s engine.TaskState) {
			a.mu.Lock()
			a.running[task] = s == engine.Running
			a.mu.Unlock()
		},
		Committed: a.listen,
	})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	a.failed = make(chan error, 1)
	go func() {
		err := e.Run(ctx)
		if ctx.Err() == nil {
			a.failed <- err
		}
		errc <- err
	}()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-errc:
			case <-time.After(time.Minute):
				runErr = errors.New("engine did not stop within a minute")
			}
		})
		return runErr
	}
	t.Cleanup(func() { stop() })
	return stop
}

// waitRunning waits until n tasks are running.
func (a *app) waitRunning(t testing.TB, n int) {
	t.Helper()
	poll.Until(t, time.Minute, func() error {
		a.mu.Lock()
		running := 0
		for _, r := range a.running {
			if r {
				running++
			}
		}
		a.mu.Unlock()
		if running != n {
			return fmt.Errorf("%d of %d tasks running", running, n)
		}
		return nil
	})
}

func (a *app) restoredTotal() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	var n int64
	for _, v := range a.restored {
		n += v
	}
	return n
}

// sentences makes n sentences of 10 words from a vocabulary of 500 and
// adds each word to counts.
func sentences(rng *rand.Rand, n int, counts map[string]int64) [][2]string {
	out := make([][2]string, n)
	for i := range out {
		words := make([]string, 10)
		for j := range words {
			w := "w" + strconv.Itoa(int(rng.ExpFloat64()*60)%500)
			words[j] = w
			counts[w]++
		}
		out[i] = [2]string{"s" + strconv.Itoa(rng.IntN(1<<30)), strings.Join(words, " ")}
	}
	return out
}

// storeCounts reads the counts store of every task directory under dir.
func storeCounts(t testing.TB, dir string) map[string]int64 {
	t.Helper()
	tasks, err := filepath.Glob(filepath.Join(dir, "wordcount", "wordcount-*"))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("no task stores under %s (%v)", dir, err)
	}
	out := map[string]int64{}
	for _, td := range tasks {
		db, err := state.Open(state.Config{Dir: td, Stores: []string{"counts"}})
		if err != nil {
			t.Fatal(err)
		}
		it, err := db.Range(0, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		for it.Next() {
			k := string(it.Key())
			if _, dup := out[k]; dup {
				t.Errorf("word %q is counted by more than one task", k)
			}
			out[k] = decodeCount(t, it.Value())
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		it.Close()
		db.Close()
	}
	return out
}

func decodeCount(t testing.TB, v []byte) int64 {
	t.Helper()
	if len(v) != 8 {
		t.Fatalf("count value %x is not 8 bytes", v)
	}
	var n int64
	for _, b := range v {
		n = n<<8 | int64(b)
	}
	return n
}

// storedCount is the count of key k in store seen of the task of pipeline
// on partition part of application app under dir (the poison and onerror
// guests count there), read from the task's RocksDB after its engine
// stopped.
func storedCount(t testing.TB, dir, app, pipeline string, part int32) int64 {
	t.Helper()
	db, err := state.Open(state.Config{Dir: filepath.Join(dir, app, pipeline+"-"+strconv.Itoa(int(part))), Stores: []string{"seen"}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v, ok, err := db.Get(0, []byte("k"))
	if err != nil || !ok {
		t.Fatalf("store has no count for k: %v", err)
	}
	return decodeCount(t, v)
}

func outputCounts(t testing.TB, c *cluster) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for k, v := range c.latest(t, "word-counts") {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("word-counts[%q] = %q: %v", k, v, err)
		}
		out[k] = n
	}
	return out
}

func equalCounts(t testing.TB, what string, got, want map[string]int64) {
	t.Helper()
	if err := diffCounts(what, got, want); err != nil {
		t.Fatal(err)
	}
}

// diffCounts describes how got differs from want, or returns nil.
func diffCounts(what string, got, want map[string]int64) error {
	if maps.Equal(got, want) {
		return nil
	}
	var diffs []string
	for k, w := range want {
		if got[k] != w {
			diffs = append(diffs, fmt.Sprintf("%s: got %d want %d", k, got[k], w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: got %d, not expected", k, g))
		}
	}
	if len(diffs) > 10 {
		diffs = append(diffs[:10], fmt.Sprintf("... %d more", len(diffs)-10))
	}
	return fmt.Errorf("%s differ from the expected counts (%d vs %d words):\n%s", what, len(got), len(want), strings.Join(diffs, "\n"))
}

// TestWordcount runs the wordcount plugin end to end: 100k words over 4
// partitions, then a clean restart that replays nothing, then a restart with
// the state directory deleted that rebuilds the stores from the changelog.
func TestWordcount(t *testing.T) {
	c := newCluster(t, "sentences", "words", "word-counts")
	dir := t.TempDir()
	a := newWordcount(t, c, dir)
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[string]int64{}

	c.produce(t, "sentences", sentences(rng, 10_000, want))
	stop := a.start(t)
	c.waitDone(t, "wordcount", "sentences", "words")
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	if got := a.restoredTotal(); got != 0 {
		t.Errorf("first run restored %d records from empty changelogs", got)
	}
	equalCounts(t, "output counts", outputCounts(t, c), want)
	equalCounts(t, "store counts", storeCounts(t, dir), want)

	t.Run("restart after clean stop replays nothing", func(t *testing.T) {
		c.produce(t, "sentences", sentences(rng, 2_000, want))
		stop := a.start(t)
		c.waitDone(t, "wordcount", "sentences", "words")
		if err := stop(); err != nil {
			t.Fatalf("run: %v", err)
		}
		if got := a.restoredTotal(); got != 0 {
			t.Errorf("restart restored %d changelog records, want 0", got)
		}
		if len(a.restored) != partitions {
			t.Errorf("restore ran for %d tasks, want %d", len(a.restored), partitions)
		}
		equalCounts(t, "output counts", outputCounts(t, c), want)
		equalCounts(t, "store counts", storeCounts(t, dir), want)
	})

	t.Run("restart with state deleted rebuilds from changelog", func(t *testing.T) {
		before := storeCounts(t, dir)
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		stop := a.start(t)
		a.waitRunning(t, partitions)
		if err := stop(); err != nil {
			t.Fatalf("run: %v", err)
		}
		if got := a.restoredTotal(); got < int64(len(before)) {
			t.Errorf("rebuild restored %d records, want at least %d (one per word)", got, len(before))
		}
		equalCounts(t, "rebuilt store counts", storeCounts(t, dir), before)
	})
}
