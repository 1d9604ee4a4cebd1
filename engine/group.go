package engine

import (
	"cmp"
	"context"
	"errors"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"
)

// assigned makes a task for every newly assigned partition of every pipeline
// reading it. Each partition stays paused until all its tasks have restored.
// It does no I/O and waits for nothing: each task opens its store on its own
// goroutine, after the standby it replaces has closed it.
func (e *Engine) assigned(_ context.Context, cl *kgo.Client, assigned map[string][]int32) {
	e.mu.Lock()
	defer e.mu.Unlock()
	// The first assignment can come before Run has stored the client.
	e.client.CompareAndSwap(nil, cl)
	var start []*task
	for topic, parts := range assigned {
		for _, p := range parts {
			tp := topicPartition{topic, p}
			for _, pl := range e.byTopic[topic] {
				key := taskKey{pl.cfg.Name, p}
				t, ok := e.tasks[key]
				if !ok {
					t = newTask(e.env, pl, p, e.takeStandby(key)) // its directory is the task's now
					e.tasks[key] = t
					start = append(start, t)
				}
				t.gmu.Lock()
				if t.State() != Running {
					e.env.pause.pause(t, pauseRestoring) // run resumes it, after taking gmu
				}
				t.gmu.Unlock()
				e.parts[tp] = append(e.parts[tp], t)
			}
		}
	}
	for _, t := range start {
		e.startTask(t)
	}
	e.reconcileStandbysLocked()
	e.log.Info("partitions assigned", "partitions", assigned)
}

func (e *Engine) startTask(t *task) {
	ctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		if err := t.run(ctx); err != nil {
			e.taskFailed(t, err) // failure.go
		}
	}()
}

// adjustOffsets starts each partition at the later of the group's committed
// offset and the offset its tasks' stores recorded: a store committed
// locally before the group commit was lost already holds those records'
// effects. Partitions without a group offset start where the stores say, or
// at the beginning. It also tells the tasks the group's offset, below which
// commitGroup never commits.
func (e *Engine) adjustOffsets(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	// The stores open on their tasks' goroutines; wait for them without
	// the lock, which a task's open does not need but a rebalance does.
	e.mu.Lock()
	var wait []*task
	for topic, parts := range offsets {
		for p := range parts {
			wait = append(wait, e.parts[topicPartition{topic, p}]...)
		}
	}
	e.mu.Unlock()
	for _, t := range wait {
		select {
		case <-t.opened:
		case <-ctx.Done():
			return offsets, ctx.Err()
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for topic, parts := range offsets {
		for p, off := range parts {
			ts := e.parts[topicPartition{topic, p}]
			for _, t := range ts {
				t.groupCommitted[topic] = off.EpochOffset().Offset // negative when none
			}
			stored := int64(-1)
			for i, t := range ts {
				o, ok := t.storedInput[topic]
				if !ok {
					stored = -1
					break
				}
				if i == 0 || o < stored {
					stored = o
				}
			}
			if stored >= 0 && stored > off.EpochOffset().Offset {
				parts[p] = kgo.NewOffset().At(stored)
				e.log.Info("resuming from the stores' offset", "topic", topic, "partition", p, "offset", stored, "group_offset", off.EpochOffset().Offset)
			}
		}
	}
	return offsets, nil
}

// revoked stops the tasks of revoked partitions with a final commit and
// commits their offsets to the group before the partitions move.
func (e *Engine) revoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ts := e.tasksOf(revoked)
	if len(ts) == 0 {
		return
	}
	// Under exactly-once the open transaction is aborted at its end (the
	// session saw the revoke), so the tasks drop their buffers.
	if err := e.stopTasks(ctx, ts, !e.eos); err != nil {
		e.log.Warn("stop revoked tasks", "err", err)
	}
	e.reconcileStandbysLocked() // a revoked task may be a standby here now
	e.log.Info("partitions revoked", "partitions", revoked)
}

// lost closes the tasks of lost partitions without committing: another
// member may own them already, and writing their changelogs now would race
// with its restore.
func (e *Engine) lost(ctx context.Context, _ *kgo.Client, lost map[string][]int32) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ts := e.tasksOf(lost)
	if err := e.stopTasks(ctx, ts, false); err != nil {
		e.log.Warn("close lost tasks", "err", err)
	}
	e.reconcileStandbysLocked()
	e.log.Warn("partitions lost", "partitions", lost)
}

func (e *Engine) tasksOf(parts map[string][]int32) []*task {
	seen := map[*task]bool{}
	var ts []*task
	for topic, ps := range parts {
		for _, p := range ps {
			for _, t := range e.parts[topicPartition{topic, p}] {
				if !seen[t] {
					seen[t] = true
					ts = append(ts, t)
				}
			}
		}
	}
	return ts
}

// stopTasks stops ts (with a final local commit when commit is set), commits
// their durable offsets to the group, and forgets them. e.mu is held.
func (e *Engine) stopTasks(ctx context.Context, ts []*task, commit bool) error {
	var errs []error
	for _, t := range abortRestores(ts) {
		if err := t.stop(ctx, commit); err != nil {
			errs = append(errs, err)
		}
	}
	if commit && len(ts) > 0 {
		if err := e.commitGroup(ctx, ts); err != nil {
			errs = append(errs, err)
		}
	}
	for _, t := range ts {
		t.forget() // a failed task's pauses and metrics
		delete(e.tasks, t.key)
		for _, topic := range t.pl.cfg.Inputs {
			tp := topicPartition{topic, t.key.partition}
			rest := e.parts[tp][:0]
			for _, o := range e.parts[tp] {
				if o != t {
					rest = append(rest, o)
				}
			}
			if len(rest) == 0 {
				delete(e.parts, tp)
			} else {
				e.parts[tp] = rest
			}
		}
	}
	return errors.Join(errs...)
}

// taskDir is where a task's RocksDB lives.
func (e *Engine) taskDir(k taskKey) string {
	return e.layout().Task(k.pipeline, k.partition).Path
}

// abortRestores cancels the restores of ts at once, so that they end
// together rather than one after another, and returns ts with the running
// tasks first: their final commits do not wait for restores to wind down.
func abortRestores(ts []*task) []*task {
	for _, t := range ts {
		t.stopping.Store(true) // before the state is read, as in stop
		if t.State() != Running {
			t.cancel()
		}
	}
	ts = slices.Clone(ts)
	slices.SortStableFunc(ts, func(a, b *task) int {
		return cmp.Compare(rank(a.State() != Running), rank(b.State() != Running))
	})
	return ts
}

func rank(b bool) int {
	if b {
		return 1
	}
	return 0
}
