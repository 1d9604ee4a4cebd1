package engine_test

import (
	"maps"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/flowstate/flowstate/engine"
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
	deadline := time.Now().Add(2 * time.Minute)
	for {
		got := outputCounts(t, c)
		if maps.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			equalCounts(t, "output counts after 2 minutes", got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
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
