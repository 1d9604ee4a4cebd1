package restore

import (
	"log/slog"
	"math"
	"sync"
	"time"
)

// DefaultProgressInterval is the default period of "restore progress" lines.
const DefaultProgressInterval = 5 * time.Second

// ETA estimates the time left of a restore that has replayed done of
// done+remaining offsets in elapsed: the offsets left at the average pace so
// far. Offsets, not records, because a compacted changelog has gaps. It is 0
// when nothing is left and -1 while there is no pace to go by.
func ETA(done, remaining int64, elapsed time.Duration) time.Duration {
	if remaining <= 0 {
		return 0
	}
	if done <= 0 || elapsed <= 0 {
		return -1
	}
	eta := float64(elapsed) * float64(remaining) / float64(done)
	if eta > math.MaxInt64 {
		return -1
	}
	return time.Duration(eta)
}

// progressLog writes a "restore progress" line every interval while a
// restore replays, from its Batch events: with many records, a line per
// batch would be too many, and a stalled restore still gets its lines.
type progressLog struct {
	log   *slog.Logger
	task  string
	total int64 // offsets to replay, from Begin
	begin time.Time

	mu        sync.Mutex
	restored  int64
	remaining int64

	stop chan struct{}
	done chan struct{}
}

// startProgressLog starts the line writer; its stop method ends it and waits.
func startProgressLog(log *slog.Logger, task string, total int64, begin time.Time, every time.Duration) *progressLog {
	p := &progressLog{
		log: log, task: task, total: total, begin: begin, remaining: total,
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	go p.run(every)
	return p
}

func (p *progressLog) run(every time.Duration) {
	defer close(p.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
			p.line()
		}
	}
}

// batch records a Batch event.
func (p *progressLog) batch(b BatchInfo) {
	p.mu.Lock()
	p.restored, p.remaining = b.Restored, b.Remaining
	p.mu.Unlock()
}

func (p *progressLog) line() {
	p.mu.Lock()
	restored, remaining := p.restored, p.remaining
	p.mu.Unlock()
	elapsed := time.Since(p.begin)
	eta := "unknown"
	if d := ETA(p.total-remaining, remaining, elapsed); d >= 0 {
		eta = d.Round(time.Second).String()
	}
	p.log.Info("restore progress", "task", p.task, "restored", restored, "remaining", remaining,
		"rate", math.Round(float64(restored)/elapsed.Seconds()), "eta", eta)
}

func (p *progressLog) close() {
	close(p.stop)
	<-p.done
}
