package engine

import (
	"context"
	"sync"
	"time"

	"github.com/flowstate/flowstate/restore"
)

// restoreClientConfig is what every changelog client of the engine shares:
// the restore settings (restore.Settings, the config's restore keys), the
// brokers, the Kafka client options of role, and read_committed under
// exactly-once. The standbys' Tailer takes it as it is.
func restoreClientConfig(cfg *Config, role string) restore.Config {
	return restore.Config{
		Settings:      cfg.Restore,
		Brokers:       cfg.Brokers,
		ClientOpts:    cfg.clientOpts(role),
		ReadCommitted: cfg.Guarantee == ExactlyOnce,
	}
}

// restoreConfig is the restore.Config of r's restore or catch-up: the
// engine's settings, a turn among MaxParallel, and a listener that keeps
// r's progress for Metrics before passing each event on to the user's.
func restoreConfig(env *taskEnv, r *replica, standby bool) restore.Config {
	c := restoreClientConfig(env.cfg, ClientRestore)
	c.Task = r.name
	c.Logger = r.log
	c.Listener = restoreListener(env, r)
	c.Acquire = func(ctx context.Context) (func(), error) { return acquireTurn(ctx, env.turns, r, standby) }
	c.CrashPoints = env.cfg.CrashPoints
	return c
}

// acquireTurn waits for one of the engine's MaxParallel restore turns
// (turns.go).
func acquireTurn(ctx context.Context, turns *turnPool, r *replica, standby bool) (release func(), err error) {
	waited := false
	release, err = turns.acquire(ctx, standby, func() {
		waited = true
		r.rs.setWaiting(true)
		r.log.Info("restore waiting for a turn", "task", r.name, "max_parallel", turns.size, "standby", standby)
	})
	if waited {
		r.rs.setWaiting(false)
	}
	return release, err
}

func restoreListener(env *taskEnv, r *replica) restore.Listener {
	user := env.listener.Restore
	pipeline := r.pl.cfg.Name
	return restore.Listener{
		Begin: func(b restore.BeginInfo) {
			r.rs.begin(b.Remaining)
			if user.Begin != nil {
				user.Begin(b)
			}
		},
		Batch: func(b restore.BatchInfo) {
			r.rs.batch(b.Restored, b.Remaining)
			env.track.restored(pipeline, int64(b.Records), b.Bytes)
			if user.Batch != nil {
				user.Batch(b)
			}
		},
		End: func(i restore.EndInfo) {
			r.rs.end(i.Restored)
			env.track.restoreEnded(pipeline, i.Took)
			if user.End != nil {
				user.End(i)
			}
		},
	}
}

// restoreStatus is a task's current or last restore, written from the
// task's goroutine and read by Metrics.
type restoreStatus struct {
	mu        sync.Mutex
	waiting   bool      // for a turn
	begun     time.Time // Begin event; zero before
	ended     time.Time // End event; zero while replaying
	total     int64     // offsets to replay, from Begin
	restored  int64     // records replayed
	remaining int64     // offsets left
}

func (s *restoreStatus) setWaiting(w bool) {
	s.mu.Lock()
	s.waiting = w
	s.mu.Unlock()
}

func (s *restoreStatus) begin(remaining int64) {
	s.mu.Lock()
	s.begun, s.ended = time.Now(), time.Time{}
	s.total, s.remaining, s.restored = remaining, remaining, 0
	s.mu.Unlock()
}

func (s *restoreStatus) batch(restored, remaining int64) {
	s.mu.Lock()
	s.restored, s.remaining = restored, remaining
	s.mu.Unlock()
}

func (s *restoreStatus) end(restored int64) {
	s.mu.Lock()
	s.restored, s.ended = restored, time.Now() // an interrupted restore keeps its remaining count
	s.mu.Unlock()
}

// info returns the task's TaskRestore as of now.
func (s *restoreStatus) info(now time.Time) TaskRestore {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := TaskRestore{Waiting: s.waiting, Restored: s.restored, Remaining: -1, ETA: -1}
	if s.begun.IsZero() {
		return r
	}
	r.Remaining = s.remaining
	end := now
	if !s.ended.IsZero() {
		end = s.ended
	}
	r.Took = end.Sub(s.begun)
	switch {
	case s.remaining == 0:
		r.ETA = 0
	case s.ended.IsZero() && r.Took > 0:
		// Only a restore in progress has a rate: a finished one adds
		// nothing to the process's current restore rate.
		r.Rate = float64(s.restored) / r.Took.Seconds()
		r.ETA = restore.ETA(s.total-s.remaining, s.remaining, r.Took)
	}
	return r
}
