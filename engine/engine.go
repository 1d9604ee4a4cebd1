package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sync/errgroup"

	"github.com/flowstate/flowstate/host"
	"github.com/flowstate/flowstate/restore"
	"github.com/flowstate/flowstate/state"
)

// Engine runs the pipelines of one application in this process.
type Engine struct {
	cfg       Config
	log       *slog.Logger
	pipelines []*pipeline
	byTopic   map[string][]*pipeline // input topic -> pipelines reading it

	// eos is set under exactly-once: one transaction per commit interval
	// for all tasks (txn.go).
	eos bool

	// Set up by Run.
	cl    *kgo.Client
	sess  *kgo.GroupTransactSession // exactly-once only; cl is its client
	txnID string
	// producerReady is closed once the transactional producer is
	// initialized; restores wait for it under exactly-once.
	producerReady chan struct{}
	soon          chan struct{} // a task asks for an early commit

	// crashAfterCommit, set by tests, is asked after each committed
	// transaction (with its changelog records) whether to die before
	// writing the stores.
	crashAfterCommit func(changes int) bool
	budget           *state.Budget
	rt               *host.Runtime
	abort            context.CancelCauseFunc // stops the poll loop with a task's fatal error
	// env is what tasks and standbys get from the engine, from Run.
	env *taskEnv

	// mu guards tasks and parts. It is held by the poll loop while it
	// dispatches and commits, and by the group's rebalance callbacks (which
	// BlockRebalanceOnPoll keeps from running during a poll). Lock order:
	// doc.go.
	mu    sync.Mutex
	tasks map[taskKey]*task
	parts map[topicPartition][]*task // input partition -> tasks reading it
	wg    sync.WaitGroup             // task and standby goroutines

	listener Listener

	track tracker    // live tasks and restore counters, for Metrics and the janitor
	sb    standbySet // standby tasks (standby.go)
	// warmups is the number of warm-ups of the last assignment this
	// process made as the group's leader (warmup.go).
	warmups atomic.Int32
	turns   *turnPool // restore turns: Restore.MaxParallel of them
	// client is cl once Run has made it, for Metrics, which may run
	// before.
	client atomic.Pointer[kgo.Client]
	joins  joinMemory // the subscriptions of the group's joins (static.go)
	// tailer keeps the standbys' stores live copies, from Run.
	tailer *restore.Tailer
}

// pipeline is a configured pipeline and its compiled module.
type pipeline struct {
	cfg    Pipeline
	wasm   []byte
	module *host.Module
	// compileErr is why module is nil: every task of the pipeline fails
	// with it.
	compileErr error
	// changelog topic per store, in store order
	changelogs []string
	count      pipelineCounters // for Metrics (hooks.go)
}

type taskKey struct {
	pipeline  string
	partition int32
}

func (k taskKey) String() string { return fmt.Sprintf("%s/%d", k.pipeline, k.partition) }

type topicPartition struct {
	topic     string
	partition int32
}

// Listener receives task events. Its nil fields are skipped; each is called
// from the task's goroutine and must not block for long.
type Listener struct {
	// Restore receives the restore progress of every task.
	Restore restore.Listener
	// TaskState is called on every task state change.
	TaskState func(task string, s TaskState)
	// Committed is called after each task commit with the records of that
	// commit interval.
	Committed func(CommitInfo)
}

// CommitInfo describes one task commit.
type CommitInfo struct {
	Task     string
	Records  int   // input records processed since the previous commit
	Changes  int   // changelog records written
	Outputs  int   // output records produced
	Restored int64 // changelog records replayed when the task started (same every commit)
	Offsets  map[string]int64
	Took     time.Duration
}

// New checks cfg and reads every pipeline's module file. Nothing connects to
// Kafka before Run.
func New(cfg Config) (*Engine, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{
		cfg:     cfg,
		eos:     cfg.Guarantee == ExactlyOnce,
		log:     cfg.Logger,
		byTopic: map[string][]*pipeline{},
		tasks:   map[taskKey]*task{},
		parts:   map[topicPartition][]*task{},
	}
	for _, pc := range cfg.Pipelines {
		wasm, err := os.ReadFile(pc.Module)
		if err != nil {
			return nil, fmt.Errorf("pipelines.%s.module: %w", pc.Name, err)
		}
		p := &pipeline{cfg: pc, wasm: wasm}
		for _, s := range pc.Stores {
			p.changelogs = append(p.changelogs, cfg.ChangelogTopic(s))
		}
		e.pipelines = append(e.pipelines, p)
		for _, t := range pc.Inputs {
			e.byTopic[t] = append(e.byTopic[t], p)
		}
	}
	e.track.init(e.pipelines)
	e.sb.init()
	e.joins.e = e
	e.turns = newTurnPool(cfg.Restore.MaxParallel)
	return e, nil
}

// SetListener sets the engine's event listener; call it before Run.
func (e *Engine) SetListener(l Listener) { e.listener = l }

// Run joins the group and processes until ctx is done or a task fails. On a
// clean stop every task commits and the group offsets are committed; Run
// returns nil. A task failure stops the engine the same way (everything
// before the failing batch is committed) and is returned.
func (e *Engine) Run(ctx context.Context) (err error) {
	pollCtx, abort := context.WithCancelCause(ctx)
	defer abort(nil)
	e.abort = abort
	// A stop asked for while the engine is still starting (compiling,
	// creating topics, joining) is a clean stop: nothing was processed, and
	// the startup step's error is only the cancellation, often wrapped in a
	// client's own error.
	running := false
	defer func() {
		if !running && err != nil && ctx.Err() != nil {
			e.log.Info("engine stopped while starting", "err", err)
			err = nil
		}
	}()

	if err := os.MkdirAll(e.cfg.StateDir, 0o755); err != nil {
		return fmt.Errorf("state_dir: %w", err)
	}
	e.budget, err = state.NewBudget(e.cfg.RocksDB)
	if err != nil {
		return fmt.Errorf("rocksdb budget: %w", err)
	}
	defer e.budget.Close()
	e.track.budget.Store(e.budget)
	e.recoverClosedOffsets() // janitor.go: before any task, for the first join

	e.rt, err = host.NewRuntime(ctx, host.RuntimeConfig{
		CacheDir: e.cfg.CacheDir,
		Logger:   e.log,
	})
	if err != nil {
		return fmt.Errorf("wasm runtime: %w", err)
	}
	defer e.rt.Close(context.WithoutCancel(ctx))

	admin, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(e.cfg.Brokers...)}, e.cfg.clientOpts(ClientAdmin)...)...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	// The admin client also serves the group balancer, which lists
	// changelog end offsets when this process leads the group.
	defer admin.Close()
	if err := e.ensureTopics(ctx, admin); err != nil {
		return err
	}
	// The limits the modules are compiled with fit what the topics take
	// (limits.go).
	batchMax, err := e.fitLimits(ctx, kadm.NewClient(admin))
	if err != nil {
		return err
	}
	for _, p := range e.pipelines {
		p.module, err = e.rt.Compile(ctx, p.cfg.Name, p.wasm, p.cfg.Limits)
		p.wasm = nil
		if err != nil && (p.cfg.OnFailure == OnFailureStopProcess || ctx.Err() != nil) {
			return fmt.Errorf("pipeline %s: %w", p.cfg.Name, err)
		}
		if err != nil {
			// The pipeline's tasks fail with it (task.start); the other
			// pipelines run.
			p.compileErr = fmt.Errorf("compile module %s: %w", p.cfg.Module, err)
			e.log.Error("pipeline module refused; its tasks fail", "pipeline", p.cfg.Name, "err", err)
		}
	}

	var inputs []string
	for t := range e.byTopic {
		inputs = append(inputs, t)
	}
	slices.Sort(inputs)
	opts := []kgo.Opt{
		kgo.SeedBrokers(e.cfg.Brokers...),
		kgo.ConsumerGroup(e.cfg.ApplicationID),
		kgo.SessionTimeout(e.cfg.SessionTimeout),
		kgo.HeartbeatInterval(min(3*time.Second, e.cfg.SessionTimeout/3)),
		kgo.ConsumeTopics(inputs...),
		// flowstate's balancer (balancer.go): co-partitioned inputs together,
		// sticky and lag-aware. The cooperative sticky balancer after it is
		// what a group still holding members of an older flowstate agrees
		// on during a rolling upgrade; once every member offers
		// flowstate-v1, the group switches to it (both are cooperative).
		kgo.Balancers(e.joins.remember(&groupBalancer{e: e, adm: kadm.NewClient(admin), stop: ctx.Done()}), e.joins.remember(kgo.CooperativeStickyBalancer())),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(e.assigned),
		kgo.OnPartitionsRevoked(e.revoked),
		kgo.OnPartitionsLost(e.lost),
		kgo.AdjustFetchOffsetsFn(e.adjustOffsets),
		kgo.RecordPartitioner(partitioner{changelogs: e.changelogTopics()}),
		kgo.MaxBufferedRecords(1 << 20),
		kgo.ProducerLinger(5 * time.Millisecond),
	}
	if batchMax > 0 {
		opts = append(opts, kgo.ProducerBatchMaxBytes(batchMax))
	}
	if e.cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(e.cfg.InstanceID))
	}
	opts = append(opts, e.cfg.clientOpts(ClientConsumer)...)
	e.takeStaticJoin()
	e.producerReady = make(chan struct{})
	e.soon = make(chan struct{}, 1)
	// One client tails the changelogs of every standby (standby.go).
	e.tailer, err = restore.NewTailer(restoreClientConfig(&e.cfg, ClientStandby))
	if err != nil {
		return err
	}
	defer e.tailer.Close()
	// The group's callbacks make tasks as soon as the client exists.
	e.env = &taskEnv{
		cfg:           &e.cfg,
		eos:           e.eos,
		client:        &e.client,
		listener:      e.listener,
		budget:        e.budget,
		track:         &e.track,
		turns:         e.turns,
		tailer:        e.tailer,
		pause:         newPauser(&e.client),
		producerReady: e.producerReady,
		maxRecord:     int(batchMax),
		commitSoon:    e.commitSoon,
		taskDir:       e.taskDir,
		opened:        e.markOpen,
		closed:        e.markClosed,
	}

	if e.eos {
		if e.txnID, err = e.transactionalID(); err != nil {
			return err
		}
		opts = append(opts,
			kgo.TransactionalID(e.txnID),
			kgo.TransactionTimeout(max(10*time.Second, 10*e.cfg.CommitInterval)),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.RequireStableFetchOffsets(),
		)
		e.sess, err = kgo.NewGroupTransactSession(opts...)
		if err == nil {
			e.cl = e.sess.Client()
		}
	} else {
		e.cl, err = kgo.NewClient(opts...)
	}
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	e.client.Store(e.cl)
	e.joins.clientReady(e.cl)
	if e.eos {
		// Initializing the producer fences an older process with the same
		// transactional id and ends the transaction it left open, so the
		// changelogs' last stable offsets are final before any restore.
		if _, _, err := e.cl.ProducerID(ctx); err != nil {
			e.cl.Close()
			return fmt.Errorf("init transactional producer %s: %w", e.txnID, err)
		}
		if err := e.sess.Begin(); err != nil {
			e.cl.Close()
			return fmt.Errorf("begin transaction: %w", err)
		}
	}
	close(e.producerReady)
	running = true
	e.log.Info("engine started", "application_id", e.cfg.ApplicationID, "pipelines", len(e.pipelines), "inputs", inputs)

	// The parts that run beside the poll loop. The tailer serves the
	// standbys and stops after them; the others stop before the tasks.
	var tail errgroup.Group
	tailCtx, stopTail := context.WithCancel(context.WithoutCancel(ctx))
	defer stopTail()
	tail.Go(func() error { return e.tailer.Run(tailCtx) })
	loopsCtx, stopLoops := context.WithCancel(ctx)
	defer stopLoops()
	loops, loopsCtx := errgroup.WithContext(loopsCtx)
	started := time.Now()
	loops.Go(func() error { return e.janitor(loopsCtx, started) }) // janitor.go
	loops.Go(func() error { return e.standbyLoop(loopsCtx) })      // standby.go
	loops.Go(func() error { return e.probe(loopsCtx) })            // warmup.go

	err = e.poll(pollCtx)
	stopLoops()
	err = errors.Join(err, loops.Wait())
	// Standbys stop before the tasks: they only copy, and a stop is
	// never worth a final commit.
	e.closeStandbys()
	stopTail()
	err = errors.Join(err, tail.Wait())
	e.tailer.Close()
	if err == nil && ctx.Err() == nil {
		err = context.Cause(pollCtx) // a task failed
	}

	// Stop every task with a final commit, then leave the group. Closing the
	// client runs the revoke callback, which finds no tasks left.
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var terr error
	if errors.Is(err, errCrashed) {
		// Like kill -9: the stores keep what they had; the client is
		// closed without ending anything.
		e.mu.Lock()
		_ = e.stopTasks(stopCtx, e.tasksLocked(), false)
		e.mu.Unlock()
		e.cl.Close()
		e.wg.Wait()
		return err
	}
	if e.eos && !errors.Is(err, ErrFenced) {
		// Commit the last transaction on a clean stop, abort it after a
		// failure; either way the tasks end with empty buffers. A fenced
		// engine has aborted already and may not end a transaction.
		terr = e.commitTxn(stopCtx, err == nil)
		if errors.Is(terr, ErrFenced) && err == nil {
			err, terr = terr, nil
		}
	}
	e.mu.Lock()
	var all []*task
	for _, t := range e.tasks {
		all = append(all, t)
	}
	cerr := e.stopTasks(stopCtx, all, !e.eos)
	e.mu.Unlock()
	cerr = errors.Join(terr, cerr)
	_, gen := e.cl.GroupMetadata()
	e.cl.Close()
	e.wg.Wait()
	if err == nil && cerr == nil {
		// A static member stays in the group; its restart repeats this
		// subscription (static.go).
		cerr = e.saveStaticJoin(gen)
	}
	e.log.Info("engine stopped")
	return errors.Join(err, cerr)
}

func (e *Engine) changelogTopics() map[string]bool {
	m := map[string]bool{}
	for _, p := range e.pipelines {
		for _, t := range p.changelogs {
			m[t] = true
		}
	}
	return m
}

// maxPollWait bounds one wait of the poll loop for records.
const maxPollWait = 100 * time.Millisecond

// poll is the processing loop: it fetches, hands each partition's records to
// its tasks, and commits the group offsets the tasks have made durable. It
// returns when ctx ends: on a stop, or when a task fails.
func (e *Engine) poll(ctx context.Context) error {
	nextCommit := time.Now().Add(e.cfg.CommitInterval)
	for {
		if ctx.Err() != nil {
			return nil
		}
		// A poll waits at most until the next commit, and at most
		// maxPollWait, so that a commit asked for by commitSoon (a task
		// whose offsets became durable, or whose buffer is full) is not
		// held up by an idle input.
		wait := min(time.Until(nextCommit), maxPollWait)
		if wait < 10*time.Millisecond {
			wait = 10 * time.Millisecond
		}
		pollCtx, cancel := context.WithTimeout(ctx, wait)
		fetches := e.cl.PollRecords(pollCtx, 10_000)
		cancel()
		if fetches.IsClientClosed() {
			return nil
		}
		var fenced error
		fetches.EachError(func(topic string, p int32, err error) {
			switch {
			case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
			case errors.Is(err, kerr.FencedInstanceID):
				// Another process joined with our instance_id: it owns
				// our partitions now.
				fenced = err
			default:
				e.log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
			}
		})
		if fenced != nil {
			e.cl.AllowRebalance()
			e.log.Error("fenced: another instance joined the group with instance_id "+e.cfg.InstanceID+"; stopping", "err", fenced)
			return fmt.Errorf("%w: instance_id %s: %w", ErrFenced, e.cfg.InstanceID, fenced)
		}
		// Handing records over never waits for a task (inbox.go).
		e.mu.Lock()
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			if len(fp.Records) == 0 {
				return
			}
			end := fp.HighWatermark
			if e.eos && fp.LastStableOffset >= 0 {
				end = fp.LastStableOffset
			}
			for _, t := range e.parts[topicPartition{fp.Topic, fp.Partition}] {
				t.lag.fetched(fp.Topic, end)
				if t.State() == Failed {
					// Fetched before its pause took effect. Under
					// exactly-once the transaction would commit the
					// position past them: abort it again first.
					t.settled.Store(!e.eos)
					continue
				}
				if t.in.push(fp.Records) {
					e.env.pause.pause(t, pauseFull)
				}
			}
		})
		e.restartDue(time.Now()) // failure.go
		e.mu.Unlock()
		e.cl.AllowRebalance()

		soon := false
		select {
		case <-e.soon:
			soon = true
		default:
		}
		if soon || time.Now().After(nextCommit) {
			if e.eos {
				if ctx.Err() != nil {
					return nil // Run commits the last transaction
				}
				// A stop asked for while the transaction ends must not
				// cancel its end: Run commits the last one after.
				endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
				err := e.commitTxn(endCtx, true)
				cancel()
				if err != nil {
					return err
				}
				if err := e.sess.Begin(); err != nil {
					return fmt.Errorf("begin transaction: %w", err)
				}
			} else {
				e.mu.Lock()
				err := e.commitGroup(ctx, e.tasksLocked())
				e.mu.Unlock()
				if err != nil && ctx.Err() == nil {
					e.log.Warn("group commit", "err", err)
				}
			}
			nextCommit = time.Now().Add(e.cfg.CommitInterval)
		}
	}
}

func (e *Engine) tasksLocked() []*task {
	ts := make([]*task, 0, len(e.tasks))
	for _, t := range e.tasks {
		ts = append(ts, t)
	}
	return ts
}

// commitGroup commits, for every input partition of ts, the lowest offset
// that all of the partition's tasks have made durable in their stores.
func (e *Engine) commitGroup(ctx context.Context, ts []*task) error {
	offsets := map[string]map[int32]kgo.EpochOffset{}
	for _, t := range ts {
		for topic, off := range t.durableOffsets() {
			tp := topicPartition{topic, t.key.partition}
			min := off
			for _, other := range e.parts[tp] {
				if o, ok := other.durableOffsets()[topic]; ok && o < min {
					min = o
				}
			}
			// Only above the group's offset, once adjustOffsets has told
			// it: a task back on an old store holds that store's input
			// offset until it has processed a record, and committing it
			// would rewind the group under a fetch not yet started.
			if c, ok := t.groupCommitted[topic]; !ok || min <= c {
				continue
			}
			if offsets[topic] == nil {
				offsets[topic] = map[int32]kgo.EpochOffset{}
			}
			offsets[topic][t.key.partition] = kgo.EpochOffset{Epoch: -1, Offset: min}
		}
	}
	if len(offsets) == 0 {
		return nil
	}
	var cerr error
	e.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if ke := kerr.ErrorForCode(rp.ErrorCode); ke != nil && cerr == nil {
					cerr = fmt.Errorf("commit %s partition %d: %w", rt.Topic, rp.Partition, ke)
				}
			}
		}
	})
	if cerr != nil {
		return cerr
	}
	for _, t := range ts {
		for topic := range offsets {
			if eo, ok := offsets[topic][t.key.partition]; ok {
				t.groupCommitted[topic] = eo.Offset
			}
		}
	}
	return nil
}
