package engine_test

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/flowstate/flowstate/engine"
	"github.com/flowstate/flowstate/internal/plugintest"
	"github.com/flowstate/flowstate/internal/poll"
)

// TestExactlyOnceFailedTaskCommitsNothing: under exactly_once a task that
// fails after it produced outputs into the open transaction (two good
// batches, then a poison one, in one commit interval) must not let the
// transaction commit those outputs, or its input offsets, without its store
// writes. The transaction aborts; the task restarts from the committed
// offsets and fails again, and at every moment the read_committed outputs,
// the group's offset and the store agree.
func TestExactlyOnceFailedTaskCommitsNothing(t *testing.T) {
	c := newCluster(t, "in", "out")
	dir := t.TempDir()
	a := &app{cfg: engine.Config{
		ApplicationID:  "eosfail",
		Brokers:        []string{c.addr},
		StateDir:       dir,
		Guarantee:      engine.ExactlyOnce,
		CommitInterval: 500 * time.Millisecond, // the three batches land in one interval
		Logger:         testLogger(t),
		Pipelines: []engine.Pipeline{{
			Name:            "poison",
			Module:          plugintest.Build(t, "engine/testdata/poison"),
			Inputs:          []string{"in"},
			Outputs:         []string{"out"},
			Stores:          []string{"seen"},
			MaxBatchRecords: 10,
			Restart:         engine.Restart{InitialBackoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond},
		}},
	}}
	good := func(n int) [][2]string {
		kvs := make([][2]string, n)
		for i := range kvs {
			kvs[i] = [2]string{"k", "v"} // one key: one partition, in order
		}
		return kvs
	}
	stop := a.start(t)
	a.waitRunning(t, partitions)
	c.produce(t, "in", good(50))
	c.waitDone(t, "eosfail", "in")

	// 50 more, the 28th poisoned: batches 50-59 and 60-69 produce their
	// outputs into the transaction, 70-79 fails the task.
	more := good(50)
	more[27][1] = "poison"
	c.produce(t, "in", more)
	poll.Until(t, time.Minute, func() error {
		select {
		case err := <-a.failed:
			t.Fatalf("the engine stopped: %v", err)
		default:
		}
		for _, ti := range a.eng.Metrics().Tasks {
			if ti.State == engine.Failed && ti.Restarts >= 2 {
				return nil
			}
			// A restart that got past the poison record: the checks
			// below say what was lost.
			if done, _ := c.committedAll(t, "eosfail", []string{"in"}); done && ti.Restarts >= 1 {
				return nil
			}
		}
		return errors.New("the task did not fail and restart twice")
	})
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	// The outputs count up by one from 1, and end where the group's offset
	// and the store's count are: 50, or 70 if the good batches were
	// committed in a transaction of their own before the poison batch.
	var last int64
	part := int32(-1)
	for _, r := range c.readAll(t, "out") {
		n, err := strconv.ParseInt(string(r.Value), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if n != last+1 {
			t.Fatalf("output %d after %d: an output was committed twice or lost", n, last)
		}
		last = n
	}
	committed, err := c.adm.FetchOffsets(t.Context(), "eosfail")
	if err != nil {
		t.Fatal(err)
	}
	var group int64 = -1
	committed.Each(func(o kadm.OffsetResponse) {
		if o.Topic == "in" && o.At > 0 {
			group, part = o.At, o.Partition
		}
	})
	if part < 0 {
		t.Fatal("no offset committed for topic in")
	}
	store := storedCount(t, dir, "eosfail", "poison", part)
	t.Logf("outputs end at %d, group offset %d, store count %d", last, group, store)
	if last != group || store != group || (group != 50 && group != 70) {
		t.Errorf("outputs end at %d, the group's offset is %d and the store counts %d: want all 50 (or 70)", last, group, store)
	}
}
