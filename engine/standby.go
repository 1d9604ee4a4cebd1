package engine

import (
	"context"
	"sync"
	"sync/atomic"
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
// them with the rebalance callbacks; sb.mu is taken after e.mu. Neither
// waits for a store to close: the next owner of a directory waits for the
// last one's goroutine to end (standbySet.closing, task.prev).

// standbyRetry is the wait before a standby whose tail failed (a fetch
// error, records deleted under it) starts over.
const standbyRetry = time.Second

// standby is a standby task: a replica whose goroutine tails the task's
// changelogs into its store and never processes input.
type standby struct {
	*replica
	// warmup marks a warm-up: a copy filling up where the task is to move
	// (warmup.go). Only Metrics reads it.
	warmup atomic.Bool
	// lag is the changelog offsets the store is behind, as of its last
	// fetch; for Metrics.
	lag atomic.Int64
	// prev is the closing standby or task of the same key, if any: the
	// directory is opened once it has closed.
	prev <-chan struct{}
}

func newStandby(env *taskEnv, pl *pipeline, partition int32, prev <-chan struct{}) *standby {
	// Its catch-up's "restore done" is no task's restore.
	log := env.cfg.Logger.With("pipeline", pl.cfg.Name, "partition", partition, "role", RoleStandby)
	s := &standby{replica: newReplica(env, pl, partition, log), prev: prev}
	env.track.add(s)
	return s
}

func (s *standby) setState(st TaskState) {
	if TaskState(s.state.Swap(int32(st))) != st {
		// The listener follows the tasks that process; a standby's state
		// is in Metrics.
		s.log.Info("standby "+st.String(), "task", s.name, "warmup", s.warmup.Load())
	}
}

// standbySet is the standby tasks of the process. Its lock is taken after
// the engine's mu.
type standbySet struct {
	mu      sync.Mutex
	want    map[taskKey]bool     // as of the last assignment: task -> a warm-up
	running map[taskKey]*standby // started and not yet stopped
	// closing is the standbys told to stop whose goroutine may still
	// hold the directory; whoever opens it next waits for done.
	closing map[taskKey]<-chan struct{}
	closed  bool          // the engine is stopping: start no more
	kick    chan struct{} // a new assignment arrived
}

func (s *standbySet) init() {
	s.want = map[taskKey]bool{}
	s.running = map[taskKey]*standby{}
	s.closing = map[taskKey]<-chan struct{}{}
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
func (e *Engine) standbyLoop(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-e.sb.kick:
			e.mu.Lock()
			e.reconcileStandbysLocked()
			e.mu.Unlock()
		}
	}
}

// reconcileStandbysLocked stops the standbys no longer assigned, or whose
// task is active here, and starts the assigned ones not running. It waits
// for nothing: a stopping standby closes its store on its own goroutine,
// and the next owner of the directory waits for that. e.mu is held.
func (e *Engine) reconcileStandbysLocked() {
	e.sb.mu.Lock()
	defer e.sb.mu.Unlock()
	for k, s := range e.sb.running {
		warmup, ok := e.sb.want[k]
		if !ok || e.tasks[k] != nil {
			e.stopStandbyLocked(k, s)
			continue
		}
		s.warmup.Store(warmup) // a standby may become a warm-up, or back
	}
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
		s := newStandby(e.env, pl, k.partition, e.closingLocked(k))
		s.warmup.Store(warmup)
		e.sb.running[k] = s
		ctx, cancel := context.WithCancel(context.Background())
		s.cancel = cancel
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			s.run(ctx)
		}()
	}
}

// stopStandbyLocked tells s, the standby of k, to stop. e.sb.mu is held.
func (e *Engine) stopStandbyLocked(k taskKey, s *standby) {
	s.cancel()
	delete(e.sb.running, k)
	e.sb.closing[k] = s.done
}

// closingLocked returns the done channel of k's standby that is still
// closing, or nil, and forgets it. e.sb.mu is held.
func (e *Engine) closingLocked(k taskKey) <-chan struct{} {
	done := e.sb.closing[k]
	delete(e.sb.closing, k)
	if done != nil {
		select {
		case <-done:
			return nil
		default:
		}
	}
	return done
}

// takeStandby stops the standby of k, if one runs, so that the active task
// can open its directory, and returns what the task waits for before it
// does: the standby's done channel, or nil. It does not wait. e.mu is held.
func (e *Engine) takeStandby(k taskKey) <-chan struct{} {
	e.sb.mu.Lock()
	defer e.sb.mu.Unlock()
	if s := e.sb.running[k]; s != nil {
		s.log.Info("standby stopping: the task becomes active here", "task", s.name)
		e.stopStandbyLocked(k, s)
	}
	return e.closingLocked(k)
}

// closeStandbys stops every standby for good and waits for them; Run
// calls it as it stops.
func (e *Engine) closeStandbys() {
	e.sb.mu.Lock()
	e.sb.closed = true
	var wait []<-chan struct{}
	for k, s := range e.sb.running {
		e.stopStandbyLocked(k, s)
	}
	for _, done := range e.sb.closing {
		wait = append(wait, done)
	}
	e.sb.mu.Unlock()
	for _, done := range wait {
		<-done
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

// run is the standby's goroutine: tail the changelogs into the store until
// the standby is stopped, then close the store.
func (s *standby) run(ctx context.Context) {
	defer close(s.done)
	defer s.env.track.remove(s) // after closeStore has recorded the close time
	defer s.cancel()
	if err := waitClosed(ctx, s.prev); err != nil {
		s.setState(Closed)
		return
	}
	if _, err := s.open(); err != nil {
		// Another standby is worth nothing more than this one: the
		// engine goes on, and the next assignment tries again.
		s.log.Warn("standby: open store", "task", s.name, "err", err)
		s.setState(Failed)
		return
	}
	s.setState(Running)
	rc := restoreConfig(s.env, s.replica, true)
	// A standby's catch-up is not a task's restore: it keeps its progress
	// for Metrics but stays out of the restore counters and the user's
	// listener, which describe the restores of active tasks.
	rc.Listener = restore.Listener{
		Begin: func(b restore.BeginInfo) { s.rs.begin(b.Remaining); s.lag.Store(b.Remaining) },
		Batch: func(b restore.BatchInfo) { s.rs.batch(b.Restored, b.Remaining); s.lag.Store(b.Remaining) },
		End:   func(i restore.EndInfo) { s.rs.end(i.Restored) },
	}
	applied := func(i restore.TailInfo) {
		s.setChangelogOffsets(i.Next)
		s.lag.Store(i.Lag)
	}
	logs := s.changelogLogs()
	for {
		err := s.env.tailer.Tail(ctx, rc, s.db, logs, applied)
		if err == nil || ctx.Err() != nil {
			break
		}
		s.log.Warn("standby: tail failed; starting over", "task", s.name, "err", err, "retry_in", standbyRetry)
		timer := time.NewTimer(standbyRetry)
		select {
		case <-ctx.Done():
		case <-timer.C:
		}
		timer.Stop()
	}
	s.closeStore()
	s.setState(Closed)
}

// info describes the standby for Metrics.
func (s *standby) info(now time.Time) TaskInfo {
	info := s.baseInfo(now, RoleStandby)
	info.Lag = s.lag.Load()
	if s.warmup.Load() {
		info.Role = RoleWarmup
	}
	return info
}
