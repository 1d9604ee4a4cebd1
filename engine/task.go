package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowstate/flowstate/abi"
	"github.com/flowstate/flowstate/host"
	"github.com/flowstate/flowstate/restore"
	"github.com/flowstate/flowstate/state"
	"github.com/flowstate/flowstate/state/changelog"
)

// forceCommitBytes is the write-buffer size at which a task commits before
// its interval ends, bounding its memory.
const forceCommitBytes = 64 << 20

// task is an active task: one pipeline on one input partition, processing
// its input. Its goroutine (run) owns the store, the Wasm instance and
// everything below "Owned by the task goroutine"; other goroutines touch
// the channels, the inbox, the atomics and the fields under gmu, durMu and
// the engine's mu.
type task struct {
	*replica

	in  inbox
	ctl chan stopReq
	txn chan txnReq // exactly-once commit phases, from the engine
	// stopping is set once the task is told to stop: a restore or a
	// backlog in progress gives up.
	stopping atomic.Bool
	// prev is the closing standby of the same task, or nil: the store is
	// opened once it has closed.
	prev <-chan struct{}
	// changelog is where the task's commits write its stores' changes.
	changelog changelog.Log
	// opened is closed once the store is open (or failed to open) and
	// storedInput is set; adjustOffsets waits for it.
	opened chan struct{}
	// lag is the task's input position, for Metrics.
	lag inputLag
	// hist is the task's restarts and last failure, shared with the runs
	// that replace it after a failure (failure.go).
	hist *history
	// settled is set once nothing the task did can be in an open
	// transaction: at once under at-least-once, after the abort that
	// follows its failure under exactly-once (failure.go).
	settled atomic.Bool

	// gmu orders the engine's pause of a task not yet running (assigned)
	// with the task's start of running, which lifts it.
	gmu sync.Mutex

	// storedInput is the input offsets recorded in the store when the task
	// was opened; read by adjustOffsets after opened closes.
	storedInput map[string]int64
	// groupCommitted is the group's offset per input: as fetched when the
	// partition was assigned (adjustOffsets), then as last committed;
	// commitGroup commits only above it. Guarded by the engine's mu.
	groupCommitted map[string]int64
	// durable is the input offsets made durable by the last local commit;
	// guarded by durMu.
	durable map[string]int64

	// Owned by the task goroutine.
	inst      *host.Instance
	out       producer
	restored  int64            // changelog records replayed at the start
	processed map[string]int64 // next input offset per topic, processed but maybe not committed
	prepared  prepared         // an exactly-once commit between its steps 1 and 3
	recs      []abi.Record
	outs      []host.Output
	dlq       int // outputs of the batch in outs that are dead letters
	since     CommitInfo
}

type stopReq struct {
	commit bool
	reply  chan error
}

// newTask makes the active task of pl on partition. It does no I/O: its
// goroutine opens the store, after prev (the closing standby of the same
// task, or nil) has let go of the directory.
func newTask(env *taskEnv, pl *pipeline, partition int32, prev <-chan struct{}) *task {
	log := env.cfg.Logger.With("pipeline", pl.cfg.Name, "partition", partition)
	t := &task{
		replica:        newReplica(env, pl, partition, log),
		changelog:      changelog.Log{Stores: pl.cfg.Stores, Topics: pl.changelogs, Partition: partition},
		in:             newInbox(),
		ctl:            make(chan stopReq),
		txn:            make(chan txnReq),
		prev:           prev,
		opened:         make(chan struct{}),
		storedInput:    map[string]int64{},
		groupCommitted: map[string]int64{},
		durable:        map[string]int64{},
		processed:      map[string]int64{},
		hist:           newHistory(time.Now()),
	}
	t.out.client = env.client
	env.track.add(t) // before the directory opens: the janitor leaves it alone
	return t
}

func (t *task) setState(s TaskState) {
	if TaskState(t.state.Swap(int32(s))) == s {
		return
	}
	if s != Failed { // logged at ERROR with its error by taskFailed
		t.log.Info("task "+s.String(), "task", t.name)
	}
	if f := t.env.listener.TaskState; f != nil {
		f(t.name, s)
	}
}

func (t *task) durableOffsets() map[string]int64 {
	t.durMu.Lock()
	defer t.durMu.Unlock()
	return maps.Clone(t.durable)
}

// stop ends the task, with a final commit when commit is set, and waits for
// its goroutine. A task that has already ended returns nil: its error is
// reported by its goroutine.
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

// run is the task's goroutine: open and restore the store, then process
// and commit until stopped. It returns an error only for a failure that
// should stop the engine.
func (t *task) run(ctx context.Context) error {
	defer close(t.done)
	// A failed task stays tracked (Metrics shows it FAILED) and keeps its
	// partitions paused until it is restarted or stopped (forget).
	defer func() {
		if t.State() != Failed {
			t.env.track.remove(t) // after release has recorded the close time
		}
	}()
	defer t.env.pause.releaseExcept(t, pauseFailed)
	if err := t.start(ctx); err != nil {
		t.release(ctx)
		if t.stopping.Load() {
			t.setState(Closed)
			return nil // stopped during restore
		}
		return t.failed(err)
	}
	t.gmu.Lock()
	t.setState(Running) // under gmu: the engine pauses only tasks not yet running
	t.gmu.Unlock()
	t.env.pause.resume(t, pauseRestoring)

	// Under at-least-once a task commits on its own clock; under
	// exactly-once the engine commits every task in one transaction (txn.go).
	var tickc <-chan time.Time
	if !t.env.eos {
		tick := time.NewTicker(t.env.cfg.CommitInterval)
		defer tick.Stop()
		tickc = tick.C
	}
	for {
		select {
		case <-t.in.ready:
			recs, resume := t.in.take()
			if resume {
				t.env.pause.resume(t, pauseFull)
			}
			if err := t.process(ctx, recs); err != nil {
				return t.failProcessing(ctx, err)
			}
			if t.db.PendingBytes() >= forceCommitBytes {
				if t.env.eos {
					t.env.commitSoon()
				} else if err := t.commit(ctx); err != nil {
					return t.fail(ctx, err)
				}
			}
		case <-tickc:
			if err := t.commit(ctx); err != nil {
				return t.fail(ctx, err)
			}
			// The input offsets just made durable reach the group at the
			// poll loop's next turn, not a whole interval later.
			t.env.commitSoon()
		case req := <-t.txn:
			if err := t.transact(ctx, req); err != nil {
				return t.fail(ctx, err)
			}
		case req := <-t.ctl:
			// A stop commits what the task processed and leaves the rest
			// of its inbox to the partition's next owner, which starts
			// from the committed offsets: a slow task stops at once.
			var err error
			if req.commit {
				err = t.commit(ctx)
			} else {
				t.db.Discard()
			}
			t.release(ctx)
			t.setState(Closed)
			req.reply <- err
			return nil
		}
	}
}

// failProcessing ends the task after processing failed with err. Under
// at-least-once it first commits what it processed before the failure (a
// failed batch leaves nothing behind), so that nothing done is lost and
// nothing after it is marked done; under exactly-once the engine aborts the
// open transaction instead, and the batches before this one are processed
// again after the restart.
func (t *task) failProcessing(ctx context.Context, err error) error {
	if !t.env.eos {
		if cerr := t.commit(ctx); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}
	return t.fail(ctx, err)
}

// fail ends the task after err, keeping what was committed.
func (t *task) fail(ctx context.Context, err error) error {
	t.release(ctx)
	return t.failed(err)
}

// failed marks the task FAILED. Its partitions stay paused (pauseFailed
// outlives the task's goroutine), and what it fetched but did not process
// is dropped: a restart starts from its committed offsets.
func (t *task) failed(err error) error {
	t.env.pause.pause(t, pauseFailed)
	t.in.drop()
	t.setState(Failed)
	return err
}

// ended reports whether the task's goroutine has ended.
func (t *task) ended() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

// forget lets go of what a task that ended keeps: its pauses and its place
// in Metrics. The engine calls it, holding mu, once the task has left
// e.tasks or been replaced there.
func (t *task) forget() {
	t.env.pause.release(t)
	t.env.track.remove(t)
	if t.cancel != nil {
		t.cancel()
	}
}

// start opens and restores the store and instantiates the module.
func (t *task) start(ctx context.Context) error {
	err := waitClosed(ctx, t.prev)
	if err == nil {
		var off state.Offsets
		off, err = t.open()
		if err == nil {
			maps.Copy(t.storedInput, off.Input)
			maps.Copy(t.durable, off.Input)
			maps.Copy(t.processed, off.Input)
			t.lag.processed(off.Input)
		}
	}
	close(t.opened)
	if err != nil {
		return err
	}
	if t.pl.module == nil {
		return fmt.Errorf("task %s: %w", t.name, t.pl.compileErr)
	}
	t.setState(Restoring)
	if t.env.eos {
		// A transaction the previous owner left open is aborted or
		// completed when the engine's producer is initialized; the
		// changelog's committed end is stable only after that.
		select {
		case <-t.env.producerReady:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	res, err := restore.Restore(ctx, restoreConfig(t.env, t.replica, false), t.db, t.changelogLogs())
	if err != nil {
		return err
	}
	t.restored = res.Records
	if off, err := t.db.Offsets(); err == nil {
		t.setChangelogOffsets(off.Changelog)
	}
	t.inst, err = t.pl.module.Instantiate(ctx, host.InstanceConfig{
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
func (t *task) release(ctx context.Context) {
	if t.inst != nil {
		t.inst.Close(context.WithoutCancel(ctx))
		t.inst = nil
	}
	t.closeStore()
}

// drain processes the records already handed to the task.
func (t *task) drain(ctx context.Context) error {
	for {
		recs, resume := t.in.take()
		if resume {
			t.env.pause.resume(t, pauseFull)
		}
		if len(recs) == 0 {
			return nil
		}
		if err := t.process(ctx, recs); err != nil {
			return err
		}
	}
}

// process runs recs through the module in batches of MaxBatchRecords.
func (t *task) process(ctx context.Context, recs []*kgo.Record) error {
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
		if t.stopping.Load() {
			return nil // the rest is the next owner's: a stop does not wait for it
		}
		n := min(len(recs), t.pl.cfg.MaxBatchRecords)
		if err := t.processBatch(ctx, recs[:n]); err != nil {
			return err
		}
		recs = recs[n:]
	}
	return nil
}

// processBatch runs one batch through the module and produces its
// outputs. A batch the module fails is handled by the pipeline's OnError
// (onerror.go); what it cannot handle is returned, with the records
// before the failure processed and the rest not.
func (t *task) processBatch(ctx context.Context, recs []*kgo.Record) error {
	begin := time.Now()
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
	done := len(recs)
	t.dlq = 0
	t.outs, err = t.call(ctx, t.recs, t.outs[:0])
	if err != nil {
		done = 0
		outcome := OnErrorFail
		if t.pl.cfg.OnError != OnErrorFail && isolatable(err) {
			outcome = t.pl.cfg.OnError
			done, err = t.isolate(ctx, recs, err) // onerror.go: skip or dead-letter the failing records
		}
		t.pl.count.failedBatch(outcome)
	}
	t.emit(ctx, recs[:done])
	if f := t.env.cfg.Hooks.BatchDone; f != nil {
		f(t.pl.cfg.Name, len(recs), time.Since(begin))
	}
	if err != nil {
		first := recs[done]
		return fmt.Errorf("task %s: batch of %d records from %s partition %d offset %d: %w",
			t.name, len(recs)-done, first.Topic, first.Partition, first.Offset, err)
	}
	return nil
}

// emit produces t.outs, the outputs of recs, and marks recs processed.
func (t *task) emit(ctx context.Context, recs []*kgo.Record) {
	for i := range t.outs {
		o := &t.outs[i]
		kr := &kgo.Record{Topic: o.Topic, Key: o.Key, Value: o.Value}
		for _, h := range o.Headers {
			kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		t.out.produce(ctx, kr)
	}
	t.since.Outputs += len(t.outs)
	t.since.Records += len(recs)
	for _, r := range recs {
		t.processed[r.Topic] = r.Offset + 1
	}
	t.pl.count.records.Add(int64(len(recs)))
	t.pl.count.emitted.Add(int64(len(t.outs) - t.dlq))
	t.lag.processed(t.processed)
}

// call is one guest call over recs, appending their outputs to outs.
func (t *task) call(ctx context.Context, recs []abi.Record, outs []host.Output) ([]host.Output, error) {
	f := t.env.cfg.Hooks.GuestCall
	if f == nil {
		return t.inst.Process(ctx, recs, outs)
	}
	begin := time.Now()
	outs, err := t.inst.Process(ctx, recs, outs)
	f(t.pl.cfg.Name, len(recs), time.Since(begin))
	return outs, err
}

// info describes the task for Metrics.
func (t *task) info(now time.Time) TaskInfo {
	info := t.baseInfo(now, RoleActive)
	if info.State != Running {
		info.Lag = max(info.Restore.Remaining, 0)
	}
	info.InputLag = t.lag.lag()
	t.hist.fill(&info)
	return info
}
