package engine_test

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/flowstate/flowstate/engine"
)

// TestFencing starts a second process with the same identity under
// exactly_once: it fences the first, which stops with ErrFenced, and the
// second goes on with every count exactly once.
func TestFencing(t *testing.T) {
	c := newCluster(t, "sentences", "words", "word-counts")
	rng := rand.New(rand.NewPCG(8, 9))
	want := map[string]int64{}
	c.produce(t, "sentences", sentences(rng, 2_000, want))

	first := newWordcount(t, c, t.TempDir())
	first.cfg.Guarantee = engine.ExactlyOnce
	first.cfg.InstanceID = "one"
	stopFirst := first.start(t)
	first.waitRunning(t, partitions)

	second := newWordcount(t, c, t.TempDir())
	second.cfg.Guarantee = engine.ExactlyOnce
	second.cfg.InstanceID = "one"
	stopSecond := second.start(t)

	select {
	case err := <-first.failed:
		if !errors.Is(err, engine.ErrFenced) {
			t.Fatalf("the first process ended with %v, want ErrFenced", err)
		}
		t.Logf("first process: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the first process was not fenced within a minute")
	}
	stopFirst()

	c.produce(t, "sentences", sentences(rng, 500, want))
	waitOutputs(t, c, want)
	if err := stopSecond(); err != nil {
		t.Fatalf("second process: %v", err)
	}
	checkSequences(t, c, want)
}
