package engine

import (
	"context"
	"slices"
	"sync"
)

// turnPool hands out the process's restore turns (Restore.MaxParallel):
// a task replays changelogs only while it holds one. Active tasks come
// first: their partitions process nothing until their restore ends, while
// a standby's catch-up only fills a copy. A waiting active restore takes
// the next free turn before any waiting catch-up, and catch-ups hold at
// most all turns but one (with MaxParallel 1, the one turn while no active
// restore waits), so that an active task that starts to restore while
// catch-ups run gets a turn when a restore ends, not when every catch-up
// has. Within a kind, turns go first come, first served.
type turnPool struct {
	mu       sync.Mutex
	size     int
	active   int             // turns held by active restores
	standby  int             // turns held by catch-ups
	waitAct  []chan struct{} // waiting active restores, oldest first
	waitStby []chan struct{} // waiting catch-ups, oldest first
}

func newTurnPool(size int) *turnPool { return &turnPool{size: size} }

// standbyCap is how many turns catch-ups may hold at once.
func (p *turnPool) standbyCap() int { return max(p.size-1, 1) }

// tryLocked takes a turn for the kind if one is free to it; p.mu is held.
func (p *turnPool) tryLocked(standby bool) bool {
	if p.active+p.standby >= p.size {
		return false
	}
	if standby {
		if p.standby >= p.standbyCap() || len(p.waitAct) > 0 {
			return false
		}
		p.standby++
		return true
	}
	p.active++
	return true
}

// acquire takes a turn, waiting until one is free or ctx ends; waiting
// is called once the caller must wait.
func (p *turnPool) acquire(ctx context.Context, standby bool, waiting func()) (release func(), err error) {
	p.mu.Lock()
	q := p.queue(standby)
	if len(*q) == 0 && p.tryLocked(standby) { // first come, first served within a kind
		p.mu.Unlock()
		return p.releaser(standby), nil
	}
	ch := make(chan struct{})
	*q = append(*q, ch)
	p.mu.Unlock()
	if waiting != nil {
		waiting()
	}
	select {
	case <-ch:
		return p.releaser(standby), nil
	case <-ctx.Done():
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-ch:
		// Granted as ctx ended: hand the turn on.
		p.releaseLocked(standby)
	default:
		p.dropLocked(standby, ch)
	}
	return nil, ctx.Err()
}

func (p *turnPool) releaser(standby bool) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			p.releaseLocked(standby)
			p.mu.Unlock()
		})
	}
}

// queue is the waiters of the kind.
func (p *turnPool) queue(standby bool) *[]chan struct{} {
	if standby {
		return &p.waitStby
	}
	return &p.waitAct
}

// releaseLocked gives back a turn of the kind and grants the waiters that
// may now run.
func (p *turnPool) releaseLocked(standby bool) {
	if standby {
		p.standby--
	} else {
		p.active--
	}
	p.grantLocked()
}

// dropLocked takes ch out of its queue: an active restore that stops
// waiting may let catch-ups run.
func (p *turnPool) dropLocked(standby bool, ch chan struct{}) {
	q := p.queue(standby)
	if i := slices.Index(*q, ch); i >= 0 {
		*q = slices.Delete(*q, i, i+1)
	}
	p.grantLocked()
}

// grantLocked hands free turns to waiters, active restores first.
func (p *turnPool) grantLocked() {
	for _, standby := range []bool{false, true} {
		q := p.queue(standby)
		for len(*q) > 0 && p.tryLocked(standby) {
			close((*q)[0])
			*q = (*q)[1:]
		}
	}
}
