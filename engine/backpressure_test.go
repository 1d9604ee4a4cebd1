package engine_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowstate/flowstate/engine"
	"github.com/flowstate/flowstate/host"
	"github.com/flowstate/flowstate/internal/plugintest"
)

// TestSlowPipelineDoesNotStallOthers runs a pipeline whose every record
// takes a whole call timeout (a guest that loops, skipped by on_error)
// beside a counting pipeline, in one process. While the slow pipeline's
// input trickles in, always more than it can take, the fast pipeline must
// still process a burst at its own speed: the poll loop never waits for the
// slow task, whose backlog is its own.
func TestSlowPipelineDoesNotStallOthers(t *testing.T) {
	const (
		callTimeout = 2 * time.Second
		burst       = 40_000
		// bound is what the burst may take. A poll loop that waited for
		// the slow task would hand over at most one poll (10,000
		// records) per slow record, taking (burst/10,000) call
		// timeouts, 8 s.
		bound = 5 * time.Second
	)
	c := startCluster(t, 1, false, "slow-in", "fast-in", "out", "counts-out")
	var fast atomic.Int64
	a := &app{cfg: engine.Config{
		ApplicationID:  "backpressure",
		Brokers:        []string{c.addr},
		StateDir:       t.TempDir(),
		CommitInterval: 100 * time.Millisecond,
		Logger:         testLogger(t),
		Pipelines: []engine.Pipeline{{
			Name:            "slow",
			Module:          plugintest.Build(t, "engine/testdata/onerror"),
			Inputs:          []string{"slow-in"},
			Outputs:         []string{"out"},
			Stores:          []string{"seen"},
			MaxBatchRecords: 1,
			OnError:         engine.OnErrorSkip,
			Limits:          host.Limits{CallTimeout: callTimeout},
		}, {
			Name:    "fast",
			Module:  plugintest.Build(t, "plugins/counter"),
			Inputs:  []string{"fast-in"},
			Outputs: []string{"counts-out"},
			Stores:  []string{"counts"},
		}},
	}}
	a.listen = func(info engine.CommitInfo) {
		if strings.HasPrefix(info.Task, "fast/") {
			fast.Add(int64(info.Records))
		}
	}
	a.start(t)
	a.waitRunning(t, 2)

	// The slow input trickles in, a record per fetch or so, so that the
	// slow task is handed many small batches it cannot keep up with.
	ctx, cancel := context.WithCancel(t.Context())
	var trickled atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			r := &kgo.Record{Topic: "slow-in", Key: []byte("k"), Value: []byte("loop")}
			if err := c.cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				return
			}
			trickled.Add(1)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	waitFor(t, "the slow input to trickle in", func() bool { return trickled.Load() >= 50 })

	kvs := make([][2]string, burst)
	for i := range kvs {
		kvs[i] = [2]string{strconv.Itoa(i % 1000), "x"}
	}
	begin := time.Now()
	c.produce(t, "fast-in", kvs)
	waitFor(t, "the fast pipeline to process the burst", func() bool { return fast.Load() >= burst })
	took := time.Since(begin)
	t.Logf("fast pipeline: %d records in %s (%.0f records/s) beside a pipeline at one record per %s",
		burst, took.Round(time.Millisecond), burst/took.Seconds(), callTimeout)
	if took > bound {
		t.Fatalf("the fast pipeline took %s for %d records beside a slow one, over %s", took, burst, bound)
	}
}
