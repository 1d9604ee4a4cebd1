package engine

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowstate/flowstate/internal/field"
)

// Failure domains. A task that fails (its module fails a batch under
// on_error fail, its instantiation traps, loops or reports an ABI version
// the host does not speak, or a commit of its own fails) goes FAILED with
// its error and stays in the engine: its input partitions stay paused, its
// offsets stay where its last commit put them (the group's offset of a
// partition is the lowest its tasks made durable), and the other tasks of
// the process go on. Its pipeline's Restart says when it starts again, as a
// new task on the same store; the poll loop restarts it (restartDue), since
// rewinding a partition must not race a poll, a commit or a rebalance.
//
// Under at-least-once the restart rewinds the task's partitions to the
// offsets its store holds. Under exactly-once the failed task may have
// produced outputs into the open transaction without its store writes ever
// being prepared, so no transaction that was open while the task ran may
// commit: the prepare phase fails on a task that ended inside the
// transaction, the transaction aborts (which rewinds every partition of the
// process to its committed offset and makes every task drop its buffer, as
// any abort does), and only then is the task settled: left out of later
// transactions, and free to restart.

// OnFailure is what a pipeline's failed task does to the process.
type OnFailure string

// The failure policies.
const (
	// OnFailureFailTask keeps the failure inside the task: it goes FAILED
	// and restarts as the pipeline's Restart says, while the rest of the
	// process goes on. The default.
	OnFailureFailTask OnFailure = "fail_task"
	// OnFailureStopProcess stops the engine with the task's error (after a
	// final commit of every other task), for deployments whose orchestrator
	// restarts the process.
	OnFailureStopProcess OnFailure = "stop_process"
)

func (p OnFailure) validate() error {
	if p == OnFailureFailTask || p == OnFailureStopProcess {
		return nil
	}
	return field.Errorf("", "%q is not %s or %s", p, OnFailureFailTask, OnFailureStopProcess)
}

// RestartStrategy is how a failed task is restarted.
type RestartStrategy string

// The restart strategies.
const (
	// RestartExponentialDelay restarts a failed task after a delay that
	// starts at InitialBackoff and grows by BackoffMultiplier per
	// consecutive failure up to MaxBackoff. The default.
	RestartExponentialDelay RestartStrategy = "exponential_delay"
	// RestartNever leaves a failed task FAILED until the process restarts
	// or its partitions move.
	RestartNever RestartStrategy = "never"
)

// Defaults of Restart, those of Flink's exponential-delay restart strategy.
const (
	DefaultInitialBackoff        = time.Second
	DefaultMaxBackoff            = time.Minute
	DefaultBackoffMultiplier     = 1.5
	DefaultJitterFactor          = 0.1
	DefaultResetBackoffThreshold = time.Hour
)

// Restart configures the restarts of a pipeline's failed tasks; each task
// keeps its own backoff. The shape is Flink's exponential-delay restart
// strategy (restart-strategy.exponential-delay.*). Kafka Streams: none (a
// failed stream thread is replaced at once, or the client shuts down,
// after StreamsUncaughtExceptionHandler).
type Restart struct {
	// Strategy is exponential_delay (default) or never. In the config
	// file, `restart: never` is short for `restart: {strategy: never}`.
	Strategy RestartStrategy `koanf:"strategy"`
	// InitialBackoff is the delay before the first restart. Default 1s.
	InitialBackoff time.Duration `koanf:"initial_backoff"`
	// MaxBackoff caps the delay. Default 1m.
	MaxBackoff time.Duration `koanf:"max_backoff"`
	// BackoffMultiplier multiplies the delay after each failure that
	// follows a restart, at least 1. Default 1.5.
	BackoffMultiplier float64 `koanf:"backoff_multiplier"`
	// JitterFactor spreads each delay by up to this fraction either way,
	// in [0, 1]; 0 is no jitter. Nil takes the default, 0.1.
	JitterFactor *float64 `koanf:"jitter_factor"`
	// ResetBackoffThreshold: a task that ran this long since its last
	// restart before failing again starts over at InitialBackoff. Default
	// 1h.
	ResetBackoffThreshold time.Duration `koanf:"reset_backoff_threshold"`
}

// EnsureDefaults fills zero fields with their defaults.
func (r *Restart) EnsureDefaults() {
	if r.Strategy == "" {
		r.Strategy = RestartExponentialDelay
	}
	if r.InitialBackoff == 0 {
		r.InitialBackoff = DefaultInitialBackoff
	}
	if r.MaxBackoff == 0 {
		r.MaxBackoff = max(DefaultMaxBackoff, r.InitialBackoff)
	}
	if r.BackoffMultiplier == 0 {
		r.BackoffMultiplier = DefaultBackoffMultiplier
	}
	if r.JitterFactor == nil {
		r.JitterFactor = new(float64(DefaultJitterFactor))
	}
	if r.ResetBackoffThreshold == 0 {
		r.ResetBackoffThreshold = DefaultResetBackoffThreshold
	}
}

// Validate reports every invalid field, keyed by its key under restart.
func (r Restart) Validate() error {
	var errs field.List
	switch r.Strategy {
	case RestartExponentialDelay, RestartNever:
	default:
		errs.Add("strategy", "%q is not %s or %s", r.Strategy, RestartExponentialDelay, RestartNever)
	}
	if r.InitialBackoff < 0 {
		errs.Add("initial_backoff", "%s is negative", r.InitialBackoff)
	}
	if r.MaxBackoff < r.InitialBackoff {
		errs.Add("max_backoff", "%s is below initial_backoff %s", r.MaxBackoff, r.InitialBackoff)
	}
	if r.BackoffMultiplier < 1 || math.IsInf(r.BackoffMultiplier, 0) || math.IsNaN(r.BackoffMultiplier) {
		errs.Add("backoff_multiplier", "%v is not a number of at least 1", r.BackoffMultiplier)
	}
	if r.JitterFactor == nil {
		errs.Add("jitter_factor", "unset (call EnsureDefaults)")
	} else if j := *r.JitterFactor; !(j >= 0 && j <= 1) {
		errs.Add("jitter_factor", "%v is not in [0, 1]", j)
	}
	if r.ResetBackoffThreshold < 0 {
		errs.Add("reset_backoff_threshold", "%s is negative", r.ResetBackoffThreshold)
	}
	return errs.Err()
}

// next returns the delay after prev (0 for the first failure), without
// jitter.
func (r *Restart) next(prev time.Duration) time.Duration {
	if prev <= 0 {
		return r.InitialBackoff
	}
	d := float64(prev) * r.BackoffMultiplier
	if d >= float64(r.MaxBackoff) {
		return r.MaxBackoff
	}
	return time.Duration(d)
}

// jitter spreads d by up to JitterFactor either way.
func (r *Restart) jitter(d time.Duration) time.Duration {
	j := 0.0
	if r.JitterFactor != nil {
		j = *r.JitterFactor
	}
	if j == 0 || d <= 0 {
		return d
	}
	return time.Duration(float64(d) * (1 + j*(2*rand.Float64()-1)))
}

// TaskError is the error a task failed with, naming where it happened.
type TaskError struct {
	Pipeline  string
	Partition int32
	Module    string // the module file of the pipeline
	Err       error
}

func (e *TaskError) Error() string {
	return fmt.Sprintf("pipeline %s partition %d (module %s): %v", e.Pipeline, e.Partition, e.Module, e.Err)
}

// Unwrap returns Err.
func (e *TaskError) Unwrap() error { return e.Err }

// errEndedInTxn fails the prepare phase of a transaction in which a task
// ended: the task may have produced outputs that its store writes do not
// back.
var errEndedInTxn = errors.New("engine: task ended inside the open transaction")

// history is what outlives one run of a task: its restarts and its last
// failure. The task runs that follow a failure share it; its lock is its
// own, held briefly.
type history struct {
	mu        sync.Mutex
	restarts  int           // restarts since the task was assigned here
	err       error         // last failure, nil before the first
	failedAt  time.Time     // of err
	delay     time.Duration // the last backoff, before jitter
	restartAt time.Time     // when the failed run restarts; zero: not scheduled
	startedAt time.Time     // of the current run
}

func newHistory(now time.Time) *history { return &history{startedAt: now} }

// failedRun records that the current run failed with err at now and, unless
// the strategy is never, schedules its restart. It returns the delay, or -1
// when no restart follows.
func (h *history) failedRun(r *Restart, err error, now time.Time) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.err, h.failedAt = err, now
	if r.Strategy == RestartNever {
		h.restartAt = time.Time{}
		return -1
	}
	if now.Sub(h.startedAt) >= r.ResetBackoffThreshold {
		h.delay = 0 // healthy long enough: start over
	}
	h.delay = r.next(h.delay)
	d := r.jitter(h.delay)
	h.restartAt = now.Add(d)
	return d
}

// due reports whether a restart is scheduled and its time has come.
func (h *history) due(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return !h.restartAt.IsZero() && !now.Before(h.restartAt)
}

// restarted records a restart at now.
func (h *history) restarted(now time.Time) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.restarts++
	h.restartAt = time.Time{}
	h.startedAt = now
	return h.restarts
}

// fill sets the failure fields of info.
func (h *history) fill(info *TaskInfo) {
	h.mu.Lock()
	defer h.mu.Unlock()
	info.Restarts = h.restarts
	info.FailedAt = h.failedAt
	info.RestartAt = h.restartAt
	if h.err != nil {
		info.Error = h.err.Error()
	}
}

// taskFailed handles a task whose goroutine ended with err: it stops the
// engine under on_failure stop_process, and otherwise records the failure
// and schedules the restart. The task holds its partitions paused
// (pauseFailed) already. It runs on the task's goroutine, after run.
func (e *Engine) taskFailed(t *task, err error) {
	terr := &TaskError{Pipeline: t.key.pipeline, Partition: t.key.partition, Module: t.pl.cfg.Module, Err: err}
	if t.pl.cfg.OnFailure == OnFailureStopProcess {
		t.log.Error("task FAILED; stopping the process (on_failure: stop_process)", "task", t.name, "err", terr)
		e.abort(terr)
		return
	}
	if !e.eos {
		t.settled.Store(true) // nothing of it is in a transaction
	} else {
		e.commitSoon() // abort the open transaction now, not at the interval
	}
	d := t.hist.failedRun(&t.pl.cfg.Restart, terr, time.Now())
	if d < 0 {
		t.log.Error("task FAILED; not restarted (restart: never)", "task", t.name, "err", terr)
	} else {
		t.log.Error("task FAILED", "task", t.name, "restart_in", d.Round(time.Millisecond), "err", terr)
	}
}

// restartDue restarts the failed tasks whose restart time has come. It runs
// on the poll loop between a poll and AllowRebalance, with e.mu held: no
// rebalance, poll or commit runs meanwhile.
func (e *Engine) restartDue(now time.Time) {
	for _, t := range e.tasks {
		if t.State() != Failed || !t.ended() || !t.settled.Load() || !t.hist.due(now) {
			continue
		}
		e.restartLocked(t, now)
	}
}

// restartLocked replaces the failed task old with a new task on the same
// store; e.mu is held.
func (e *Engine) restartLocked(old *task, now time.Time) {
	nt := newTask(e.env, old.pl, old.key.partition, nil)
	nt.hist = old.hist
	nt.groupCommitted = maps.Clone(old.groupCommitted)
	e.tasks[old.key] = nt
	for _, topic := range old.pl.cfg.Inputs {
		tp := topicPartition{topic, old.key.partition}
		for i, o := range e.parts[tp] {
			if o == old {
				e.parts[tp][i] = nt
			}
		}
	}
	if !e.eos {
		// The consumer is past what the failed task processed: rewind its
		// partitions to the offsets its store holds (those of its last
		// commit), or the group's. Other tasks reading them skip what
		// they have processed already.
		durable := old.durableOffsets()
		rewind := map[string]map[int32]kgo.EpochOffset{}
		for _, topic := range old.pl.cfg.Inputs {
			off, ok := durable[topic]
			if g := old.groupCommitted[topic]; !ok || g > off {
				off = g
			}
			rewind[topic] = map[int32]kgo.EpochOffset{old.key.partition: {Epoch: -1, Offset: max(off, 0)}}
		}
		e.cl.SetOffsets(rewind)
	}
	// Under exactly-once the abort that settled old rewound the partitions
	// to the committed offsets, and they have stayed paused since.
	nt.gmu.Lock()
	e.env.pause.pause(nt, pauseRestoring)
	nt.gmu.Unlock()
	old.forget()
	n := nt.hist.restarted(now)
	nt.log.Info("task restarting", "task", nt.name, "restarts", n)
	e.startTask(nt)
}
