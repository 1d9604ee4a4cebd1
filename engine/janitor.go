package engine

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/flowstate/flowstate/engine/internal/layout"
	"github.com/flowstate/flowstate/state"
)

// State cleanup. A task that leaves the process (its partition was revoked,
// or the engine stopped) keeps its directory, so that if it comes back
// within StateCleanupDelay it restores only what its changelogs gained
// meanwhile. The janitor deletes the directories under
// <state_dir>/<application_id>/ that no task uses and that have been unused
// for longer than the delay (layout.Dir.Clean says which and how):
//
//   - When a task's store closes, the task records the time in its
//     directory, and the stores' changelog offsets, which the group
//     balancer reports at every join without opening the store
//     (balancer.go); when a task opens the directory again it removes both.
//     A directory a crash left without offsets gets them at the next start,
//     before the engine joins the group (recoverClosedOffsets).
//   - A directory is first renamed away while the tracker's lock keeps
//     tasks from opening it (newTask adds a task to the tracker before it
//     opens its directory), then removed.

// layout is the state directory of the application.
func (e *Engine) layout() layout.Dir {
	return layout.New(e.cfg.StateDir, e.cfg.ApplicationID)
}

// markClosed records in the task's directory that its store closed now,
// with the stores' changelog offsets as it closed (nil when they are not
// known: the directory is then not reported to the group).
func (e *Engine) markClosed(t *replica, changelog map[string]int64) {
	if err := e.layout().Task(t.key.pipeline, t.key.partition).MarkClosed(time.Now(), changelog); err != nil {
		t.log.Warn("mark store closed", "err", err)
	}
}

// markOpen removes the close time and the closed offsets of the task's
// directory: the open store moves on from them.
func (e *Engine) markOpen(t *replica) {
	if err := e.layout().Task(t.key.pipeline, t.key.partition).MarkOpen(); err != nil {
		t.log.Warn("mark store open", "err", err)
	}
}

// recoverClosedOffsets writes the closed offsets of every task directory of
// a configured pipeline that has none (a crash closed no store), opening
// each such store once, so that the first join reports it. It runs before
// any task exists.
func (e *Engine) recoverClosedOffsets() {
	tasks, _ := e.layout().ScanTasks()
	stores := map[string][]string{}
	for _, p := range e.pipelines {
		stores[p.cfg.Name] = p.cfg.Stores
	}
	for _, td := range tasks {
		names, ok := stores[td.Pipeline]
		if !ok {
			continue
		}
		if _, ok := td.ClosedOffsets(); ok {
			continue
		}
		if _, err := os.Stat(filepath.Join(td.Path, "CURRENT")); err != nil {
			continue // not a RocksDB (yet): nothing to report
		}
		if err := recoverOffsets(td, names, e.budget); err != nil {
			e.log.Warn("read store offsets", "dir", td.Path, "err", err)
		}
	}
}

// recoverOffsets opens the store of td once and writes its offsets as its
// closed offsets.
func recoverOffsets(td layout.Task, stores []string, budget *state.Budget) error {
	db, err := state.Open(state.Config{Dir: td.Path, Stores: stores, Budget: budget})
	if err != nil {
		return err
	}
	off, err := db.Offsets()
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return td.WriteClosedOffsets(off.Changelog)
}

// janitor deletes unused task directories until ctx ends. started is the
// engine's start.
func (e *Engine) janitor(ctx context.Context, started time.Time) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		next := e.cleanState(time.Now(), started)
		// A directory closed after this pass is due no earlier than a
		// delay from now, so the next pass is never later than that.
		timer.Reset(max(time.Until(next), time.Millisecond))
	}
}

// cleanState deletes the task directories unused for longer than the delay
// as of now, and returns when the next one may be due.
func (e *Engine) cleanState(now, started time.Time) (next time.Time) {
	delay := e.cfg.StateCleanupDelay
	// inUse runs under e.track.mu, which Clean holds while it renames.
	inUse := func(name string) bool {
		for t := range e.track.live {
			if k := t.base().key; layout.TaskName(k.pipeline, k.partition) == name {
				return true
			}
		}
		return false
	}
	c := e.layout().Clean(now, started, delay, &e.track.mu, inUse)
	for _, err := range c.Errs {
		e.log.Warn("state cleanup", "err", err)
	}
	for _, d := range c.Deleted {
		e.log.Info("state directory deleted", "dir", d.Path, "unused_since", d.UnusedSince.Round(time.Second), "state_cleanup_delay", delay)
	}
	return c.Next
}
