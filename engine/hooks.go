package engine

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The Kafka clients of an engine, by role, as Config.ClientOpts gets them.
// An engine makes one consumer client (it also produces outputs and
// changelogs, and owns the transactions), one admin client, one standby
// client (the Tailer of every standby) and a restore client per restore in
// progress (at most restore.max_parallel at once).
const (
	ClientConsumer = "consumer"
	ClientAdmin    = "admin"
	ClientStandby  = "standby"
	ClientRestore  = "restore"
)

// clientOpts returns the configured extra options of a client of role.
func (c *Config) clientOpts(role string) []kgo.Opt {
	if c.ClientOpts == nil {
		return nil
	}
	return c.ClientOpts(role)
}

// Hooks receive the engine's timing events, for an exporter's histograms.
// Nil fields are skipped. Each is called on the goroutine that did the work
// (a task's, or the poll loop's) and must return quickly: it runs on the
// processing path.
type Hooks struct {
	// GuestCall follows every call of a pipeline's module over a batch of
	// records, failed calls included (an on_error search makes several).
	GuestCall func(pipeline string, records int, took time.Duration)
	// BatchDone follows every batch a task processed: the guest calls and
	// the handing of its outputs to the producer.
	BatchDone func(pipeline string, records int, took time.Duration)
	// CommitDone follows every commit: a task's under at-least-once, the
	// process's transaction under exactly-once. err is nil when the commit
	// made the progress durable (an aborted transaction is an error).
	CommitDone func(took time.Duration, err error)
}

// Outcomes of a failed batch, as in PipelineMetrics.FailedBatches: the
// pipeline's on_error policy, or OnErrorFail for a failure no policy
// handles (not the guest's).
var batchOutcomes = []OnError{OnErrorFail, OnErrorSkip, OnErrorDeadLetter}

// pipelineCounters are a pipeline's processing counters, added to by its
// tasks' goroutines, once per batch.
type pipelineCounters struct {
	records, emitted, skipped, deadLettered atomic.Int64
	failed                                  [3]atomic.Int64 // by batchOutcomes index
}

func (c *pipelineCounters) failedBatch(o OnError) {
	for i, b := range batchOutcomes {
		if b == o {
			c.failed[i].Add(1)
		}
	}
}

// commitCounters count the engine's commits.
type commitCounters struct {
	ok, failed atomic.Int64
}

func (c *commitCounters) done(hooks *Hooks, begin time.Time, err error) {
	if hooks.CommitDone != nil {
		hooks.CommitDone(time.Since(begin), err)
	}
	if err != nil {
		c.failed.Add(1)
	} else {
		c.ok.Add(1)
	}
}

// inputLag is the position of an active task in its input partitions, for
// the consumer lag: the poll loop sets the high watermarks it fetched, the
// task the offsets it processed.
type inputLag struct {
	mu   sync.Mutex
	end  map[string]int64 // high watermark per input topic, as of its last fetch
	next map[string]int64 // next offset to process per input topic
}

func (l *inputLag) fetched(topic string, hwm int64) {
	l.mu.Lock()
	if l.end == nil {
		l.end = map[string]int64{}
	}
	l.end[topic] = hwm
	l.mu.Unlock()
}

func (l *inputLag) processed(next map[string]int64) {
	l.mu.Lock()
	if l.next == nil {
		l.next = map[string]int64{}
	}
	for t, o := range next {
		l.next[t] = o
	}
	l.mu.Unlock()
}

// lag sums, over the inputs fetched so far, the offsets between the next
// to process and the high watermark (the last stable offset under
// exactly-once); an input whose position is not known yet counts 0.
func (l *inputLag) lag() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for t, end := range l.end {
		if next, ok := l.next[t]; ok && end > next {
			n += end - next
		}
	}
	return n
}
