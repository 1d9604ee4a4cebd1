package engine

import (
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Backpressure. The poll loop hands each task its records through the
// task's inbox and never waits for a task: a task that falls behind (a slow
// module, a long commit) would otherwise hold up the records of every other
// task of the process. Once an inbox holds inboxHigh bytes of keys and
// values, the poll loop pauses the task's input partitions; the task
// resumes them when it has taken the inbox below half of that. What is
// fetched while the pause takes effect still goes to the inbox, so it
// exceeds inboxHigh by at most one poll. The mark is in bytes because it
// bounds memory; it is high enough that a burst a task keeps up with
// (pausing costs a fetch round trip) is never paused. Kafka Streams:
// buffered.records.per.partition (records, 1000).
const inboxHigh = 32 << 20

// inbox is a task's queue of fetched records.
type inbox struct {
	mu     sync.Mutex
	q      [][]*kgo.Record
	n      int  // bytes of keys and values in q
	paused bool // push asked for a pause that take has not lifted
	// ready has a value while q may be non-empty.
	ready chan struct{}
}

func newInbox() inbox { return inbox{ready: make(chan struct{}, 1)} }

// push queues recs and reports whether the task's partitions should be
// paused now.
func (b *inbox) push(recs []*kgo.Record) (pause bool) {
	b.mu.Lock()
	b.q = append(b.q, recs)
	b.n += recordBytes(recs)
	if b.n >= inboxHigh && !b.paused {
		b.paused, pause = true, true
	}
	b.mu.Unlock()
	select {
	case b.ready <- struct{}{}:
	default:
	}
	return pause
}

// take returns the oldest queued fetch's records, or none, and reports
// whether the task's partitions should be resumed now. One fetch at a
// time keeps a task responsive to a stop between them.
func (b *inbox) take() (recs []*kgo.Record, resume bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.q) > 0 {
		recs = b.q[0]
		b.q[0] = nil
		b.q = b.q[1:]
		b.n -= recordBytes(recs)
	}
	if len(b.q) > 0 {
		select {
		case b.ready <- struct{}{}:
		default:
		}
	} else {
		b.q = nil // let the array go
	}
	if b.paused && b.n < inboxHigh/2 {
		b.paused, resume = false, true
	}
	return recs, resume
}

// drop empties the inbox and reports whether the task's partitions should
// be resumed now.
func (b *inbox) drop() (resume bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.q, b.n = nil, 0
	resume, b.paused = b.paused, false
	return resume
}

func recordBytes(recs []*kgo.Record) int {
	n := 0
	for _, r := range recs {
		n += len(r.Key) + len(r.Value)
	}
	return n
}

// pauseReason is why a task holds its input partitions paused.
type pauseReason int

const (
	pauseRestoring pauseReason = iota // until the task runs
	pauseFull                         // its inbox is full
	pauseFailed                       // it failed, until it restarts or stops
)

// pauser pauses and resumes input partitions for the tasks that read them.
// A partition is paused while any task holds it paused, for any reason,
// so a task resuming its partitions never resumes one that another task,
// or the same task for another reason, still needs paused. Its lock is
// taken after the engine's mu and never held while waiting for a task.
type pauser struct {
	cl   *atomic.Pointer[kgo.Client] // set before the group can assign
	mu   sync.Mutex
	held map[topicPartition]map[pauseHold]bool
}

type pauseHold struct {
	t      *task
	reason pauseReason
}

func newPauser(cl *atomic.Pointer[kgo.Client]) *pauser {
	return &pauser{cl: cl, held: map[topicPartition]map[pauseHold]bool{}}
}

// pause pauses t's input partitions for reason.
func (p *pauser) pause(t *task, reason pauseReason) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pause := map[string][]int32{}
	for _, topic := range t.pl.cfg.Inputs {
		tp := topicPartition{topic, t.key.partition}
		hs := p.held[tp]
		if hs == nil {
			hs = map[pauseHold]bool{}
			p.held[tp] = hs
		}
		if len(hs) == 0 {
			pause[topic] = append(pause[topic], tp.partition)
		}
		hs[pauseHold{t, reason}] = true
	}
	if len(pause) > 0 {
		p.cl.Load().PauseFetchPartitions(pause)
	}
}

// resume lifts t's pause for reason.
func (p *pauser) resume(t *task, reason pauseReason) {
	p.lift(t, func(h pauseHold) bool { return h == pauseHold{t, reason} })
}

// release lifts every pause t holds; a task that ends calls it.
func (p *pauser) release(t *task) {
	p.lift(t, func(h pauseHold) bool { return h.t == t })
}

// releaseExcept lifts every pause t holds but the one for reason.
func (p *pauser) releaseExcept(t *task, reason pauseReason) {
	p.lift(t, func(h pauseHold) bool { return h.t == t && h.reason != reason })
}

func (p *pauser) lift(t *task, match func(pauseHold) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	resume := map[string][]int32{}
	for _, topic := range t.pl.cfg.Inputs {
		tp := topicPartition{topic, t.key.partition}
		hs := p.held[tp]
		if len(hs) == 0 {
			continue
		}
		for h := range hs {
			if match(h) {
				delete(hs, h)
			}
		}
		if len(hs) == 0 {
			delete(p.held, tp)
			resume[topic] = append(resume[topic], tp.partition)
		}
	}
	if len(resume) > 0 {
		p.cl.Load().ResumeFetchPartitions(resume)
	}
}
