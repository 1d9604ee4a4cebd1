package engine

import (
	"context"
	"sync"
	"time"

	"github.com/flowstate/flowstate/restore"
)

// Standby replicas. The group leader gives every stateful task up to
// Config.NumStandbyReplicas standby copies on members other than the one
// running it (assign.Assign), and sends each member its standby tasks in
// the user data of its SyncGroup assignment; ParseSyncAssignment hands the
// list to setStandbys. A standby task is a task (so the tracker, the
// janitor, Metrics and the subscription's store states see it like any
// other) whose goroutine never processes input: it opens the task's
// directory and tails the changelogs into it (restore.Tailer, one client
// for all standbys of the process) until it is
// unassigned or the engine stops, then closes the store like an active task
// does (closed-at, closed-offsets.json), so the directory is kept for
// StateCleanupDelay. Its store offsets go into every join's user data, so
// that on a failover the lag-aware assignment gives the task to the member
// whose standby is most caught up, which then restores only the tail.
//
// The active and the standby of one task never run together in a process:
// a RocksDB directory has one owner. reconcileStandbys starts a standby only
// for a task not active here, and assigned stops a task's standby before
// the active task opens the directory. Both run under e.mu, which orders
// them with the rebalance callbacks; sb.mu is taken after e.mu.

// standbyRetry is the wait before a standby whose tail failed (a fetch
// error, records deleted under it) starts over.
const standbyRetry = time.Second

// standbySet is the standby tasks of the process.
type standbySet struct {
	mu      sync.Mutex
	want    map[taskKey]bool  // as of the last assignment: task -> a warm-up
	running map[taskKey]*task // started and not yet stopped
	closed  bool              // the engine is stopping: start no more
	kick    chan struct{}     // a new assignment arrived
}

func (s *standbySet) init() {
	s.want = map[taskKey]bool{}
	s.running = map[taskKey]*task{}
	s.kick = make(chan struct{}, 1)
}

// setStandbys records the standby tasks of the assignment just received
// and wakes standbyLoop; it runs on the group's goroutine and never waits.
func (e *Engine) setStandbys(ks []standbyTask) {
	e.sb.mu.Lock()
	e.sb.want = make(map[taskKey]bool, len(ks))
	for _, k := range ks {
		e.sb.want[k.taskKey] = k.warmup
	}
	e.sb.mu.Unlock()
	select {
	case e.sb.kick <- struct{}{}:
	default:
	}
}

// standbyLoop reconciles the standby tasks with each new assignment until
// ctx ends. The rebalance callbacks reconcile too (a task revoked here may
// become a standby only once it has stopped), but they do not run when an
// assignment changes nothing but standbys.
func (e *Engine) standbyLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.sb.kick:
			e.mu.Lock()
			e.reconcileStandbysLocked()
			e.mu.Unlock()
		}
	}
}

// reconcileStandbysLocked stops the standbys no longer assigned, or whose
// task is active here, and starts the assigned ones not running. e.mu is
// held.
func (e *Engine) reconcileStandbysLocked() {
	e.sb.mu.Lock()
	defer e.sb.mu.Unlock()
	var stop []*task
	for k, t := range e.sb.running {
		warmup, ok := e.sb.want[k]
		if !ok || e.tasks[k] != nil {
			stop = append(stop, t)
			delete(e.sb.running, k)
			continue
		}
		t.warmup.Store(warmup) // a standby may become a warm-up, or back
	}
	stopStandbys(stop)
	if e.sb.closed {
		return
	}
	for k, warmup := range e.sb.want {
		if e.sb.running[k] != nil || e.tasks[k] != nil {
			continue
		}
		pl := e.pipelineNamed(k.pipeline)
		if pl == nil || len(pl.cfg.Stores) == 0 {
			continue // a pipeline this process does not run, or nothing to copy
		}
		t := e.openTask(pl, k.partition, true)
		t.warmup.Store(warmup)
		e.sb.running[k] = t
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.runStandby(t)
		}()
	}
}

// takeStandby stops the standby of k, if one runs, so that the active task
// can open its directory. e.mu is held.
func (e *Engine) takeStandby(k taskKey) {
	e.sb.mu.Lock()
	t := e.sb.running[k]
	delete(e.sb.running, k)
	e.sb.mu.Unlock()
	if t != nil {
		t.log.Info("standby stopping: the task becomes active here", "task", t.name)
		stopStandbys([]*task{t})
	}
}

// closeStandbys stops every standby for good; Run calls it as it stops.
func (e *Engine) closeStandbys() {
	e.sb.mu.Lock()
	defer e.sb.mu.Unlock()
	e.sb.closed = true
	var stop []*task
	for k, t := range e.sb.running {
		stop = append(stop, t)
		delete(e.sb.running, k)
	}
	stopStandbys(stop)
}

// stopStandbys cancels ts together, then waits for each to close its store.
func stopStandbys(ts []*task) {
	for _, t := range ts {
		t.stopping.Store(true)
		t.cancel()
	}
	for _, t := range ts {
		<-t.done
	}
}

func (e *Engine) pipelineNamed(name string) *pipeline {
	for _, p := range e.pipelines {
		if p.cfg.Name == name {
			return p
		}
	}
	return nil
}

// runStandby is a standby task's goroutine: tail the changelogs into the
// store until the task is stopped, then close the store.
func (e *Engine) runStandby(t *task) {
	defer close(t.done)
	defer e.track.remove(t) // after release has recorded the close time
	defer t.cancel()
	if t.openErr != nil {
		// Another standby is worth nothing more than this one: the
		// engine goes on, and the next assignment tries again.
		t.log.Warn("standby: open store", "task", t.name, "err", t.openErr)
		t.setState(Failed)
		return
	}
	t.setState(Running)
	logs := make([]restore.Changelog, len(t.pl.changelogs))
	for i, topic := range t.pl.changelogs {
		logs[i] = restore.Changelog{Store: i, Topic: topic, Partition: t.key.partition}
	}
	rc := t.restoreConfig()
	// A standby's catch-up is not a task's restore: it keeps its progress
	// for Metrics but stays out of the restore counters and the user's
	// listener, which describe the restores of active tasks.
	rc.Listener = restore.Listener{
		Begin: func(b restore.BeginInfo) { t.rs.begin(b.Remaining); t.lag.Store(b.Remaining) },
		Batch: func(b restore.BatchInfo) { t.rs.batch(b.Restored, b.Remaining); t.lag.Store(b.Remaining) },
		End:   func(i restore.EndInfo) { t.rs.end(i.Restored) },
	}
	applied := func(i restore.TailInfo) {
		t.setChangelogOffsets(i.Next)
		t.lag.Store(i.Lag)
	}
	for {
		err := e.tailer.Tail(t.ctx, rc, t.db, logs, applied)
		if err == nil || t.ctx.Err() != nil {
			break
		}
		t.log.Warn("standby: tail failed; starting over", "task", t.name, "err", err, "retry_in", standbyRetry)
		timer := time.NewTimer(standbyRetry)
		select {
		case <-t.ctx.Done():
		case <-timer.C:
		}
		timer.Stop()
	}
	t.release()
	t.setState(Closed)
}
