package engine_test

import (
	"errors"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/flowstate/flowstate/engine"
	"github.com/flowstate/flowstate/internal/poll"
)

// TestWordcountExactlyOnce runs wordcount under exactly_once: every word
// occurrence yields exactly one output, so the read_committed outputs of a
// word are exactly 1, 2, ..., n; a clean restart replays nothing.
func TestWordcountExactlyOnce(t *testing.T) {
	c := newCluster(t, "sentences", "words", "word-counts")
	dir := t.TempDir()
	a := newWordcount(t, c, dir)
	a.cfg.Guarantee = engine.ExactlyOnce
	a.cfg.CommitInterval = 100 * time.Millisecond
	rng := rand.New(rand.NewPCG(3, 4))
	want := map[string]int64{}
	c.produce(t, "sentences", sentences(rng, 5_000, want))

	stop := a.start(t)
	waitOutputs(t, c, want)
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	checkSequences(t, c, want)
	equalCounts(t, "store counts", storeCounts(t, dir), want)

	c.produce(t, "sentences", sentences(rng, 1_000, want))
	stop = a.start(t)
	waitOutputs(t, c, want)
	if err := stop(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if got := a.restoredTotal(); got != 0 {
		t.Errorf("restart after a clean stop restored %d records, want 0", got)
	}
	checkSequences(t, c, want)
	equalCounts(t, "store counts", storeCounts(t, dir), want)
}

// waitOutputs polls the read_committed outputs until they hold the wanted
// counts.
func waitOutputs(t *testing.T, c *cluster, want map[string]int64) {
	t.Helper()
	poll.Until(t, 2*time.Minute, func() error { return diffCounts("output counts", outputCounts(t, c), want) })
}

// checkSequences checks that each word's outputs count up by one from 1:
// no effect lost, none applied twice.
func checkSequences(t *testing.T, c *cluster, want map[string]int64) {
	t.Helper()
	next := map[string]int64{}
	for _, r := range c.readAll(t, "word-counts") {
		w := string(r.Key)
		n, err := strconv.ParseInt(string(r.Value), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if n != next[w]+1 {
			t.Fatalf("word %q: output %d after %d: an effect was lost or applied twice", w, n, next[w])
		}
		next[w] = n
	}
	equalCounts(t, "output sequences", next, want)
}

// TestCrashBetweenKafkaAndRocksDB kills the engine (in process, at a chosen
// moment) after a transaction committed in Kafka and before its RocksDB
// batches: the restart replays that transaction's changelog records, and
// only those, and every output is still there exactly once.
func TestCrashBetweenKafkaAndRocksDB(t *testing.T) {
	c := newCluster(t, "sentences", "words", "word-counts")
	dir := t.TempDir()
	a := newWordcount(t, c, dir)
	a.cfg.Guarantee = engine.ExactlyOnce
	a.cfg.CommitInterval = 100 * time.Millisecond
	rng := rand.New(rand.NewPCG(5, 6))
	want := map[string]int64{}
	c.produce(t, "sentences", sentences(rng, 5_000, want))

	crashed := false
	a.setup = func(e *engine.Engine) { engine.CrashAfterCommit(e, 1) }
	stop := a.start(t)
	select {
	case err := <-a.failed:
		if !errors.Is(err, engine.ErrCrashed) {
			t.Fatalf("run ended with %v, want the simulated crash", err)
		}
		crashed = true
	case <-time.After(time.Minute):
	}
	stop()
	if !crashed {
		t.Fatal("the engine committed no transaction with changes")
	}

	a.setup = nil
	stop = a.start(t)
	a.waitRunning(t, partitions)
	waitOutputs(t, c, want)
	if err := stop(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	restored := a.restoredTotal()
	if restored == 0 {
		t.Error("the restart replayed nothing, but the stores missed a committed transaction")
	}
	// One transaction's changelog holds at most one record per word.
	if restored > int64(len(want)) {
		t.Errorf("the restart replayed %d records; one transaction holds at most %d", restored, len(want))
	}
	t.Logf("restart replayed %d changelog records", restored)
	checkSequences(t, c, want)
	equalCounts(t, "store counts", storeCounts(t, dir), want)
}
