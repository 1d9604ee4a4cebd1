package engine

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowstate/flowstate/restore"
	"github.com/flowstate/flowstate/state"
)

// TaskState is where a task is in its life.
type TaskState int32

// Task states. A task goes Created → Restoring → Running → Closed, or to
// Failed from any of them.
const (
	Created TaskState = iota
	Restoring
	Running
	Closed
	Failed
)

func (s TaskState) String() string {
	switch s {
	case Created:
		return "CREATED"
	case Restoring:
		return "RESTORING"
	case Running:
		return "RUNNING"
	case Closed:
		return "CLOSED"
	case Failed:
		return "FAILED"
	}
	return fmt.Sprintf("TaskState(%d)", int32(s))
}

// taskEnv is what the engine gives its tasks and standbys. Run sets it up
// before the first task starts; it is read-only after that.
type taskEnv struct {
	cfg *Config
	eos bool
	// client produces outputs and changelogs and consumes inputs. Run
	// sets it once the client exists, before the poll loop hands a task
	// its first records.
	client   *atomic.Pointer[kgo.Client]
	listener Listener
	budget   *state.Budget
	track    *tracker
	turns    *turnPool
	tailer   *restore.Tailer
	pause    *pauser
	// producerReady is closed once the transactional producer is
	// initialized; restores wait for it under exactly-once.
	producerReady <-chan struct{}
	// maxRecord is the largest record batch the producer writes and every
	// topic takes (limits.go), 0 when unknown.
	maxRecord int
	// commitSoon asks the poll loop for a commit at its next turn.
	commitSoon func()
	// taskDir, opened and closed are the state directory's part
	// (janitor.go).
	taskDir func(taskKey) string
	opened  func(*replica)
	closed  func(*replica, map[string]int64)
}

// replica is what an active task and a standby share: one task's
// directory opened as a store, and the changelog offsets the group
// balancer reports for it. The replica's goroutine owns db; other
// goroutines touch only the atomics, the channels and what durMu guards.
type replica struct {
	env  *taskEnv
	pl   *pipeline
	key  taskKey
	name string
	log  *slog.Logger

	state  atomic.Int32
	cancel context.CancelFunc // ends the context of the replica's goroutine
	done   chan struct{}      // closed when the goroutine has ended
	rs     restoreStatus      // for Metrics

	durMu sync.Mutex
	// changelogs is the next changelog offset per store as of the last
	// local commit, restore or applied tail batch.
	changelogs map[string]int64

	db *state.DB
}

func newReplica(env *taskEnv, pl *pipeline, partition int32, log *slog.Logger) *replica {
	key := taskKey{pl.cfg.Name, partition}
	return &replica{
		env:        env,
		pl:         pl,
		key:        key,
		name:       key.String(),
		log:        log,
		done:       make(chan struct{}),
		changelogs: map[string]int64{},
	}
}

// State returns the replica's state; safe from any goroutine.
func (r *replica) State() TaskState { return TaskState(r.state.Load()) }

// open opens the task's store and returns the offsets it holds. The
// tracker knows the replica already (the janitor leaves its directory
// alone).
func (r *replica) open() (state.Offsets, error) {
	db, err := state.Open(state.Config{
		Dir:    r.env.taskDir(r.key),
		Stores: r.pl.cfg.Stores,
		Budget: r.env.budget,
		Logger: r.log,
	})
	if err != nil {
		return state.Offsets{}, fmt.Errorf("task %s: open store: %w", r.name, err)
	}
	r.db = db
	r.env.opened(r)
	off, err := db.Offsets()
	if err != nil {
		return state.Offsets{}, fmt.Errorf("task %s: open store: %w", r.name, err)
	}
	r.setChangelogOffsets(off.Changelog)
	return off, nil
}

// closeStore closes the store, recording its offsets for later joins.
func (r *replica) closeStore() {
	if r.db == nil {
		return
	}
	// The offsets as the store closes, restore progress included: a later
	// join reports them without opening the store.
	off, err := r.db.Offsets()
	if err != nil {
		off.Changelog = nil
	}
	if err := r.db.Close(); err != nil {
		r.log.Warn("close store", "err", err)
		off.Changelog = nil
	}
	r.db = nil
	r.env.closed(r, off.Changelog)
}

// changelogLogs is the restore package's view of the replica's changelogs.
func (r *replica) changelogLogs() []restore.Changelog {
	logs := make([]restore.Changelog, len(r.pl.changelogs))
	for i, topic := range r.pl.changelogs {
		logs[i] = restore.Changelog{Store: i, Topic: topic, Partition: r.key.partition}
	}
	return logs
}

// setChangelogOffsets records the stores' changelog offsets; stores
// missing from off keep theirs.
func (r *replica) setChangelogOffsets(off map[string]int64) {
	r.durMu.Lock()
	maps.Copy(r.changelogs, off)
	r.durMu.Unlock()
}

// changelogOffsets returns the stores' changelog offsets; safe from any
// goroutine.
func (r *replica) changelogOffsets() map[string]int64 {
	r.durMu.Lock()
	defer r.durMu.Unlock()
	return maps.Clone(r.changelogs)
}

// waitClosed waits until prev, a standby of the same task that is
// stopping, has closed the directory.
func waitClosed(ctx context.Context, prev <-chan struct{}) error {
	if prev == nil {
		return nil
	}
	select {
	case <-prev:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// tracked is a replica the tracker knows: an active task or a standby.
type tracked interface {
	base() *replica
	info(now time.Time) TaskInfo
}

func (r *replica) base() *replica { return r }

// baseInfo is what Metrics reports of any replica; the roles add theirs.
func (r *replica) baseInfo(now time.Time, role string) TaskInfo {
	return TaskInfo{
		Task:      r.name,
		Pipeline:  r.key.pipeline,
		Partition: r.key.partition,
		State:     r.State(),
		Role:      role,
		Changelog: r.changelogOffsets(),
		Restore:   r.rs.info(now),
	}
}
