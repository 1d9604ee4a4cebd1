package engine

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowstate/flowstate/state"
)

// The commit path. A commit makes a task's progress durable, under both
// guarantees, in the same steps:
//
//  1. prepare (the task's goroutine): the collapsed write buffer is
//     produced to the changelogs, and every changelog and output record the
//     task produced since its last commit is awaited. Nothing is durable in
//     the store yet.
//  2. exactly-once only: the transaction ends (txn.go), committing the
//     changelog records, the outputs and the group's input offsets of every
//     task together, or aborting them; an aborted commit goes no further.
//  3. store (the task's goroutine): one RocksDB batch writes the buffer
//     with the changelog offsets and the input offsets it covers.
//  4. at-least-once only: the input offsets the stores hold are committed
//     to the group (commitGroup, from the poll loop).
//
// Under at-least-once each task runs 1 and 3 on its own clock; under
// exactly-once the engine runs each step for all tasks (commitTxn). A crash
// at any point loses nothing: the store is consistent as of its last batch,
// a restart replays only the changelog records after it (at most one
// commit's worth), and input resumes from the later of the group's offset
// and the store's. The named crash points of the process-level crash suite
// sit between the steps.

// prepared is a task's commit after step 1: what step 3 writes.
type prepared struct {
	off     state.Offsets
	changes int // changelog records produced
	begin   time.Time
}

// producer produces a task's records and tracks their acknowledgements.
// Produce callbacks run on the client's goroutines; the rest on the task's.
type producer struct {
	client  *atomic.Pointer[kgo.Client]
	pending sync.WaitGroup
	mu      sync.Mutex
	err     error // first produce error since the last await
}

func (p *producer) produce(ctx context.Context, r *kgo.Record) {
	p.pending.Add(1)
	p.client.Load().Produce(ctx, r, func(_ *kgo.Record, err error) {
		if err != nil {
			p.mu.Lock()
			if p.err == nil {
				p.err = err
			}
			p.mu.Unlock()
		}
		p.pending.Done()
	})
}

// await waits until every record produced so far is acknowledged and
// returns the first produce error since the last call.
func (p *producer) await() error {
	p.pending.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	err := p.err
	p.err = nil
	return err
}

// prepare is step 1.
func (t *task) prepare(ctx context.Context) (prepared, error) {
	begin := time.Now()
	changes := t.db.Pending()
	recs := make([]*kgo.Record, len(changes))
	for i, c := range changes {
		recs[i] = t.changelog.Record(c)
		t.out.produce(ctx, recs[i])
	}
	if err := t.out.await(); err != nil {
		// The changelog or the outputs may be incomplete: the store stays
		// as of its last commit, and the records are processed again.
		return prepared{}, fmt.Errorf("task %s: commit: produce: %w", t.name, err)
	}
	return prepared{
		off: state.Offsets{
			Changelog: t.changelog.Next(changes, recs),
			Input:     maps.Clone(t.processed),
		},
		changes: len(changes),
		begin:   begin,
	}, nil
}

// store is step 3: it writes the buffer and p's offsets in one RocksDB
// batch and publishes the input offsets as durable.
func (t *task) store(p prepared) error {
	if p.off.Changelog == nil {
		p.off.Changelog = map[string]int64{}
	}
	if p.off.Input == nil {
		p.off.Input = map[string]int64{}
	}
	if err := t.db.Commit(p.off); err != nil {
		return fmt.Errorf("task %s: commit: %w", t.name, err)
	}
	t.durMu.Lock()
	maps.Copy(t.durable, p.off.Input)
	maps.Copy(t.changelogs, p.off.Changelog)
	t.durMu.Unlock()

	info := t.since
	t.since = CommitInfo{}
	took := time.Since(p.begin)
	if f := t.env.listener.Committed; f != nil {
		info.Task = t.name
		info.Changes = p.changes
		info.Restored = t.restored
		info.Offsets = p.off.Input
		info.Took = took
		f(info)
	}
	if p.changes > 0 || info.Records > 0 {
		t.log.Debug("commit", "records", info.Records, "changes", p.changes, "took", took)
	}
	return nil
}

// discard drops what the task did since its last commit (an aborted
// transaction): the write buffer, and the input position, which goes back
// to the offsets its store holds. The session rewinds the consumer to the
// committed offsets, so what the inbox holds comes again: it is dropped
// too, or its records would be processed after a gap.
func (t *task) discard() {
	if t.in.drop() {
		t.env.pause.resume(t, pauseFull)
	}
	t.db.Discard()
	t.since = CommitInfo{}
	t.processed = t.durableOffsets()
}

// commit runs steps 1 and 3: a whole at-least-once commit of the task.
func (t *task) commit(ctx context.Context) (err error) {
	begin := time.Now()
	defer func() { t.env.track.commits.done(&t.env.cfg.Hooks, begin, err) }()
	p, err := t.prepare(ctx)
	if err != nil {
		return err
	}
	t.env.cfg.CrashPoints.Hit(CrashProduced)
	if err := t.store(p); err != nil {
		return err
	}
	t.env.cfg.CrashPoints.Hit(CrashStored)
	return nil
}

// The named crash points of the commit path (internal/crashpoint), armed
// only by the process-level crash suite.
const (
	// CrashProduced: the changelog and output records of a commit are
	// acknowledged, the RocksDB batch is not written (under exactly-once:
	// every task prepared, the transaction not ended).
	CrashProduced = "commit.produced"
	// CrashStored: at-least-once only: the RocksDB batch with the offsets
	// is written, the group offsets are not committed.
	CrashStored = "commit.stored"
	// CrashEnded: exactly-once only: the transaction is committed, the
	// RocksDB batches are not written.
	CrashEnded = "commit.ended"
)
