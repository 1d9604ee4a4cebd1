package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowstate/flowstate/abi"
	"github.com/flowstate/flowstate/host"
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

// forceCommitBytes is the write-buffer size at which a task commits before
// its interval ends, bounding its memory.
const forceCommitBytes = 64 << 20

// task is one pipeline on one input partition. Its goroutine owns db and
// inst; other goroutines touch only the channels, the atomics and the
// fields under durMu and gmu.
type task struct {
	e    *Engine
	pl   *pipeline
	key  taskKey
	name string
	log  *slog.Logger

	in   chan []*kgo.Record
	ctl  chan stopReq
	txn  chan txnReq // exactly-once commit phases, from the engine
	done chan struct{}

	state    atomic.Int32
	stopping atomic.Bool
	// standby marks a standby task (standby.go): it tails the changelogs
	// and never processes input. Set before its goroutine starts.
	standby bool
	// warmup marks a standby that is a warm-up: a copy filling up where
	// the task is to move (warmup.go). Only Metrics reads it.
	warmup atomic.Bool
	// lag is the changelog offsets a standby's store is behind, as of its
	// last fetch; for Metrics.
	lag      atomic.Int64
	restored atomic.Int64
	rs       restoreStatus   // for Metrics
	ctx      context.Context // the task's life: not canceled by Run's ctx, so a final commit can produce
	cancel   context.CancelFunc
	err      error // set before done closes

	gmu   sync.Mutex
	gates []*gate

	// storedInput is the input offsets recorded in the store when the task
	// was opened; read by adjustOffsets under e.mu.
	storedInput map[string]int64
	// groupCommitted is the group's offset per input: as fetched when the
	// partition was assigned (adjustOffsets), then as last committed;
	// commitGroup commits only above it. Guarded by e.mu.
	groupCommitted map[string]int64

	durMu   sync.Mutex
	durable map[string]int64 // input offsets made durable by the last local commit
	// changelog is the next changelog offset per store as of the last
	// local commit or restore, for the group balancer (balancer.go);
	// guarded by durMu.
	changelog map[string]int64

	// Owned by the task goroutine.
	db        *state.DB
	openErr   error
	inst      *host.Instance
	processed map[string]int64 // next input offset per topic, processed but maybe not committed
	// prepared is what an exactly-once commit writes once its transaction
	// has committed.
	prepared        state.Offsets
	preparedChanges int
	recs            []abi.Record
	outs            []host.Output
	since           CommitInfo

	pending sync.WaitGroup // produced records not yet acknowledged
	perrMu  sync.Mutex
	perr    error // first produce error since the last commit
}

type stopReq struct {
	commit bool
	reply  chan error
}

// newTask opens the task's store (so its offsets are known before fetching
// starts); the goroutine started by run does the rest.
func (e *Engine) newTask(pl *pipeline, partition int32) *task {
	return e.openTask(pl, partition, false)
}

// openTask is newTask for an active task, or for a standby (standby.go).
func (e *Engine) openTask(pl *pipeline, partition int32, standby bool) *task {
	key := taskKey{pl.cfg.Name, partition}
	log := e.log.With("pipeline", pl.cfg.Name, "partition", partition)
	if standby {
		log = log.With("role", RoleStandby) // its catch-up's "restore done" is no task's restore
	}
	t := &task{
		e:              e,
		standby:        standby,
		pl:             pl,
		key:            key,
		name:           key.String(),
		log:            log,
		in:             make(chan []*kgo.Record, 16),
		ctl:            make(chan stopReq),
		txn:            make(chan txnReq),
		done:           make(chan struct{}),
		storedInput:    map[string]int64{},
		groupCommitted: map[string]int64{},
		durable:        map[string]int64{},
		changelog:      map[string]int64{},
		processed:      map[string]int64{},
	}
	t.ctx, t.cancel = context.WithCancel(context.WithoutCancel(e.runCtx))
	e.track.add(t) // before the directory opens: the janitor leaves it alone
	t.db, t.openErr = state.Open(state.Config{
		Dir:    e.taskDir(key),
		Stores: pl.cfg.Stores,
		Budget: e.budget,
		Logger: t.log,
	})
	if t.openErr == nil {
		e.markOpen(t)
		off, err := t.db.Offsets()
		if err != nil {
			t.openErr = err
		} else {
			for topic, o := range off.Input {
				t.storedInput[topic] = o
				t.durable[topic] = o
				t.processed[topic] = o
			}
			t.setChangelogOffsets(off.Changelog)
		}
	}
	if t.openErr != nil {
		t.openErr = fmt.Errorf("task %s: open store: %w", t.name, t.openErr)
	}
	return t
}

// State returns the task's state; safe from any goroutine.
func (t *task) State() TaskState { return TaskState(t.state.Load()) }

func (t *task) setState(s TaskState) {
	if TaskState(t.state.Swap(int32(s))) == s {
		return
	}
	if t.standby {
		// The listener follows the tasks that process; a standby's
		// state is in Metrics.
		t.log.Info("standby "+s.String(), "task", t.name, "warmup", t.warmup.Load())
		return
	}
	t.log.Info("task "+s.String(), "task", t.name)
	if f := t.e.listener.TaskState; f != nil {
		f(t.name, s)
	}
}

// send hands records to the task; it gives up when the task has ended.
func (t *task) send(ctx context.Context, recs []*kgo.Record) {
	select {
	case t.in <- recs:
	case <-t.done:
	case <-ctx.Done():
	}
}

// setChangelogOffsets records the stores' changelog offsets after a commit
// or a restore; stores missing from off keep theirs.
func (t *task) setChangelogOffsets(off map[string]int64) {
	t.durMu.Lock()
	for store, o := range off {
		t.changelog[store] = o
	}
	t.durMu.Unlock()
}

// changelogOffsets returns the stores' changelog offsets as of the last
// local commit or restore; safe from any goroutine.
func (t *task) changelogOffsets() map[string]int64 {
	t.durMu.Lock()
	defer t.durMu.Unlock()
	return maps.Clone(t.changelog)
}

func (t *task) durableOffsets() map[string]int64 {
	t.durMu.Lock()
	defer t.durMu.Unlock()
	m := make(map[string]int64, len(t.durable))
	for k, v := range t.durable {
		m[k] = v
	}
	return m
}

// stop ends the task, with a final commit when commit is set, and waits for
// its goroutine. A task that has already ended returns the error it ended
// with only if that error is not already reported.
func (t *task) stop(ctx context.Context, commit bool) error {
	t.stopping.Store(true)
	if t.State() != Running {
		t.cancel() // abort a restore in progress
	}
	reply := make(chan error, 1)
	select {
	case t.ctl <- stopReq{commit: commit, reply: reply}:
	case <-t.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop %s: %w", t.name, ctx.Err())
	}
	select {
	case err := <-reply:
		<-t.done
		return err
	case <-ctx.Done():
		return fmt.Errorf("stop %s: %w", t.name, ctx.Err())
	}
}

// run is the task's goroutine: restore, then process and commit until
// stopped. It returns an error only for a failure that should stop the
// engine.
func (t *task) run() error {
	defer close(t.done)
	defer t.e.track.remove(t) // after release has recorded the close time
	defer t.cancel()
	if err := t.start(); err != nil {
		t.release()
		if t.stopping.Load() {
			t.setState(Closed)
			return nil // stopped during restore
		}
		t.setState(Failed)
		t.err = err
		return err
	}
	t.e.openGates(t)

	// Under at-least-once a task commits on its own clock; under
	// exactly-once the engine commits every task in one transaction (txn.go).
	var tickc <-chan time.Time
	if !t.e.eos {
		tick := time.NewTicker(t.e.cfg.CommitInterval)
		defer tick.Stop()
		tickc = tick.C
	}
	for {
		select {
		case recs := <-t.in:
			if err := t.process(recs); err != nil {
				return t.fail(err)
			}
			if t.db.PendingBytes() >= forceCommitBytes {
				if t.e.eos {
					t.e.commitSoon()
				} else if err := t.commit(); err != nil {
					return t.fail(err)
				}
			}
		case <-tickc:
			if err := t.commit(); err != nil {
				return t.fail(err)
			}
			// The input offsets just made durable reach the group at the
			// poll loop's next turn, not a whole interval later.
			t.e.commitSoon()
		case req := <-t.txn:
			if err := t.transact(req); err != nil {
				return t.fail(err)
			}
		case req := <-t.ctl:
			var err error
			if req.commit {
				err = t.drainAndCommit()
			} else {
				t.db.Discard()
			}
			t.release()
			t.setState(Closed)
			req.reply <- err
			return nil
		}
	}
}

// fail ends the task after an error, keeping what was committed.
func (t *task) fail(err error) error {
	t.release()
	t.setState(Failed)
	t.err = err
	return err
}

// start restores the stores and instantiates the module.
func (t *task) start() error {
	if t.openErr != nil {
		return t.openErr
	}
	t.setState(Restoring)
	logs := make([]restore.Changelog, len(t.pl.changelogs))
	for i, topic := range t.pl.changelogs {
		logs[i] = restore.Changelog{Store: i, Topic: topic, Partition: t.key.partition}
	}
	if t.e.eos {
		// A transaction the previous owner left open is aborted or
		// completed when the engine's producer is initialized; the
		// changelog's committed end is stable only after that.
		select {
		case <-t.e.producerReady:
		case <-t.ctx.Done():
			return t.ctx.Err()
		}
	}
	rc := t.restoreConfig() // restore.go
	res, err := restore.Restore(t.ctx, rc, t.db, logs)
	if err != nil {
		return err
	}
	t.restored.Store(res.Records)
	if off, err := t.db.Offsets(); err == nil {
		t.setChangelogOffsets(off.Changelog)
	}
	t.inst, err = t.pl.module.Instantiate(t.ctx, host.InstanceConfig{
		DB:     t.db,
		Stores: t.pl.cfg.Stores,
		Topics: t.pl.cfg.Outputs,
		Logger: t.log,
	})
	if err != nil {
		return fmt.Errorf("task %s: %w", t.name, err)
	}
	return nil
}

// release closes the instance and the store.
func (t *task) release() {
	if t.inst != nil {
		t.inst.Close(context.WithoutCancel(t.ctx))
		t.inst = nil
	}
	if t.db != nil {
		// The offsets as the store closes, restore progress included: a
		// later join reports them without opening the store.
		off, err := t.db.Offsets()
		if err != nil {
			off.Changelog = nil
		}
		if err := t.db.Close(); err != nil {
			t.log.Warn("close store", "err", err)
			off.Changelog = nil
		}
		t.e.markClosed(t, off.Changelog) // janitor.go
	}
}

// drainAndCommit processes the records already handed to the task, then
// commits.
func (t *task) drainAndCommit() error {
	for {
		select {
		case recs := <-t.in:
			if err := t.process(recs); err != nil {
				return err
			}
		default:
			return t.commit()
		}
	}
}

// process runs recs through the module in batches of MaxBatchRecords.
func (t *task) process(recs []*kgo.Record) error {
	// Skip records already processed: after a rebalance the poll loop may
	// hand over records from before the stores' offsets.
	for len(recs) > 0 {
		if next, ok := t.processed[recs[0].Topic]; ok && recs[0].Offset < next {
			recs = recs[1:]
			continue
		}
		break
	}
	for len(recs) > 0 {
		n := min(len(recs), t.pl.cfg.MaxBatchRecords)
		if err := t.processBatch(recs[:n]); err != nil {
			return err
		}
		recs = recs[n:]
	}
	return nil
}

func (t *task) processBatch(recs []*kgo.Record) error {
	t.recs = t.recs[:0]
	for _, r := range recs {
		ar := abi.Record{
			Topic:     r.Topic,
			Partition: r.Partition,
			Offset:    r.Offset,
			Timestamp: r.Timestamp.UnixMilli(),
			Key:       r.Key,
			Value:     r.Value,
		}
		for _, h := range r.Headers {
			ar.Headers = append(ar.Headers, abi.Header{Key: h.Key, Value: h.Value})
		}
		t.recs = append(t.recs, ar)
	}
	var err error
	t.outs, err = t.inst.Process(t.ctx, t.recs, t.outs[:0])
	if err != nil && t.pl.cfg.OnError != OnErrorFail && isolatable(err) {
		err = t.isolate(recs, err) // onerror.go: skip or dead-letter the failing records
	}
	if err != nil {
		first := recs[0]
		// Commit everything before this batch so that nothing done is lost
		// and nothing after it is marked done. Under exactly-once the
		// engine aborts the open transaction instead: the batches before
		// this one are processed again after the restart.
		if !t.e.eos {
			if cerr := t.commit(); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}
		return fmt.Errorf("task %s: batch of %d records from %s partition %d offset %d: %w",
			t.name, len(recs), first.Topic, first.Partition, first.Offset, err)
	}
	for i := range t.outs {
		o := &t.outs[i]
		kr := &kgo.Record{Topic: o.Topic, Key: o.Key, Value: o.Value}
		for _, h := range o.Headers {
			kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		t.produce(kr)
	}
	t.since.Outputs += len(t.outs)
	t.since.Records += len(recs)
	for _, r := range recs {
		t.processed[r.Topic] = r.Offset + 1
	}
	return nil
}

func (t *task) produce(r *kgo.Record) {
	t.pending.Add(1)
	t.e.cl.Produce(t.ctx, r, func(_ *kgo.Record, err error) {
		if err != nil {
			t.perrMu.Lock()
			if t.perr == nil {
				t.perr = err
			}
			t.perrMu.Unlock()
		}
		t.pending.Done()
	})
}

// commit makes the task's progress durable under at-least-once: changelog
// records for the collapsed write buffer, then every produced record
// acknowledged, then one RocksDB batch with the buffer and the changelog and
// input offsets.
func (t *task) commit() error {
	begin := time.Now()
	changes := t.db.Pending()
	recs := t.produceChangelog(changes)
	if err := t.awaitProduced(); err != nil {
		// The changelog or the outputs may be incomplete: keep the store
		// as of its last commit; the records are processed again.
		return err
	}
	t.e.cfg.CrashPoints.Hit("commit.produced") // test-only: changelog and outputs acknowledged, RocksDB batch not written
	return t.commitLocal(t.offsetsAfter(changes, recs), len(changes), begin)
}

// produceChangelog produces one changelog record per change to the task's
// partition of the store's changelog.
func (t *task) produceChangelog(changes []state.Change) []*kgo.Record {
	recs := make([]*kgo.Record, len(changes))
	for i, c := range changes {
		r := &kgo.Record{
			Topic:     t.pl.changelogs[c.Store],
			Partition: t.key.partition,
			Key:       c.Key,
		}
		if !c.Delete {
			r.Value = c.Value
		}
		recs[i] = r
		t.produce(r)
	}
	return recs
}

// awaitProduced waits until every record the task produced is acknowledged
// and returns the first produce error since the last call.
func (t *task) awaitProduced() error {
	t.pending.Wait()
	t.perrMu.Lock()
	perr := t.perr
	t.perr = nil
	t.perrMu.Unlock()
	if perr != nil {
		return fmt.Errorf("task %s: commit: produce: %w", t.name, perr)
	}
	return nil
}

// offsetsAfter returns the offsets a commit of changes (produced as recs)
// records in the store: the next changelog offset of each changed store and
// the next input offset of each input.
func (t *task) offsetsAfter(changes []state.Change, recs []*kgo.Record) state.Offsets {
	off := state.Offsets{Changelog: map[string]int64{}, Input: map[string]int64{}}
	for i, r := range recs {
		store := t.pl.cfg.Stores[changes[i].Store]
		if r.Offset+1 > off.Changelog[store] {
			off.Changelog[store] = r.Offset + 1
		}
	}
	for topic, o := range t.processed {
		off.Input[topic] = o
	}
	return off
}

// commitLocal writes the buffer and off in one RocksDB batch and publishes
// the input offsets as durable.
func (t *task) commitLocal(off state.Offsets, changes int, begin time.Time) error {
	if off.Changelog == nil {
		off = state.Offsets{Changelog: map[string]int64{}, Input: map[string]int64{}}
	}
	if err := t.db.Commit(off); err != nil {
		return fmt.Errorf("task %s: commit: %w", t.name, err)
	}
	t.e.cfg.CrashPoints.Hit("commit.stored") // test-only: RocksDB batch written, group offsets not committed
	t.durMu.Lock()
	for topic, o := range off.Input {
		t.durable[topic] = o
	}
	for store, o := range off.Changelog {
		t.changelog[store] = o
	}
	t.durMu.Unlock()

	info := t.since
	t.since = CommitInfo{}
	if f := t.e.listener.Committed; f != nil {
		info.Task = t.name
		info.Changes = changes
		info.Restored = t.restored.Load()
		info.Offsets = off.Input
		info.Took = time.Since(begin)
		f(info)
	}
	if changes > 0 || info.Records > 0 {
		t.log.Debug("commit", "records", info.Records, "changes", changes, "took", time.Since(begin))
	}
	return nil
}
