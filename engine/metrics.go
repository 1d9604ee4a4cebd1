package engine

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowstate/flowstate/state"
)

// Metrics is a snapshot of the engine: its tasks and its counters, for an
// exporter, a status page or a progress display. Counters count from New.
type Metrics struct {
	// MemberID is the process's member id in the application's group, and
	// Generation the group generation it last joined; "" and -1 before it
	// joined.
	MemberID   string
	Generation int32
	// Restore sums the restore metrics of every pipeline.
	Restore RestoreMetrics
	// Pipelines has one entry per pipeline, in config order.
	Pipelines []PipelineMetrics
	// Tasks are the tasks of the process, by pipeline and partition.
	Tasks []TaskInfo
	// Commits counts the commits that made progress durable, and
	// FailedCommits those that did not (an error, an aborted transaction):
	// a task's commits under at-least-once, the process's transactions
	// under exactly-once.
	Commits, FailedCommits int64
	// RocksDB is the memory of the process's stores and of their shared
	// budget; zero before Run has made the budget.
	RocksDB state.MemoryStats
}

// PipelineMetrics are the metrics of one pipeline.
type PipelineMetrics struct {
	Pipeline string
	Restore  RestoreMetrics
	// Records counts the input records processed and Emitted the records
	// the module emitted to its outputs (counters; also those of a
	// transaction that was later aborted and processed again).
	Records, Emitted int64
	// Skipped and DeadLettered count the records on_error skipped or wrote
	// to the dead-letter topic.
	Skipped, DeadLettered int64
	// FailedBatches counts the guest calls over a batch that failed, by
	// what followed: OnErrorFail (the task stopped; also any failure that
	// is not the guest's), OnErrorSkip or OnErrorDeadLetter (the failing
	// records were looked for). Every outcome is present.
	FailedBatches map[OnError]int64
	// InputLag sums the active tasks' TaskInfo.InputLag.
	InputLag int64
}

// RestoreMetrics describe restores: the gauges those in progress now, the
// counters every restore since New.
type RestoreMetrics struct {
	// Tasks is the number of tasks RESTORING now, Waiting those of them
	// waiting for a turn (restore.max_parallel).
	Tasks, Waiting int
	// Remaining is the changelog offsets the restoring tasks have left to
	// replay, as far as known (a task knows once it has listed its
	// changelogs).
	Remaining int64
	// Rate is the records per second the restoring tasks replay, each at
	// its average since its restore began.
	Rate float64
	// Records counts the changelog records replayed (a counter, growing
	// during a restore), Bytes their keys' and values' bytes.
	Records, Bytes int64
	// Restores counts the finished restores, also those with nothing to
	// replay, and Duration their total wall time (counters).
	Restores int64
	Duration time.Duration
}

// TaskInfo describes one task.
type TaskInfo struct {
	Task      string // pipeline/partition, as in logs
	Pipeline  string
	Partition int32
	State     TaskState
	// Role is RoleActive for a task that processes its input, RoleStandby
	// for a standby copy that only tails its changelogs, RoleWarmup for a
	// standby copy filling up on the process the task is to move to.
	Role string
	// Lag is the changelog offsets the task's stores are behind the
	// changelogs' ends: for a standby as of its last fetch, for an active
	// task what its restore has left (0 once it runs).
	Lag int64
	// InputLag is, for an active task, the input offsets it has yet to
	// process: its input partitions' high watermarks (last stable offsets
	// under exactly-once) as of their last fetch, less its position. The
	// consumer lag; 0 for a standby.
	InputLag int64
	// Changelog is the next changelog offset of each store as of the
	// task's last commit, restore or standby batch.
	Changelog map[string]int64
	// Restore is the task's current restore, or its last one (for a
	// standby, its catch-up before tailing).
	Restore TaskRestore
	// Restarts counts the restarts of an active task after failures since
	// it was assigned here; Error is its last failure ("" when none), at
	// FailedAt; RestartAt is when a FAILED task restarts (zero: not
	// scheduled, as under restart: never).
	Restarts            int
	Error               string
	FailedAt, RestartAt time.Time
}

// Task roles, as in TaskInfo.Role.
const (
	RoleActive  = "active"
	RoleStandby = "standby"
	RoleWarmup  = "warm-up"
)

// TaskRestore is the progress of one task's restore.
type TaskRestore struct {
	// Waiting is set while the task waits for a turn to replay.
	Waiting bool
	// Restored is the records replayed so far.
	Restored int64
	// Remaining is the offsets left to replay: 0 when done, -1 while not
	// known yet.
	Remaining int64
	// Rate is the average records per second of a restore in progress; 0
	// once it has ended.
	Rate float64
	// Took is the wall time of the replay so far, or of the whole restore
	// once it has ended.
	Took time.Duration
	// ETA estimates the time left: 0 when done, -1 when unknown.
	ETA time.Duration
}

// tracker holds what Metrics reports that outlives tasks, and the set of
// live tasks. Its lock is its own, held briefly and never while calling
// out, so that Metrics does not wait for a rebalance or a commit. The
// janitor holds it while it checks that a directory is unused and moves it
// away, so that no task opens the directory meanwhile.
type tracker struct {
	mu     sync.Mutex
	live   map[tracked]struct{}       // from newTask or newStandby until the goroutine ends
	totals map[string]*RestoreMetrics // counters by pipeline

	commits commitCounters
	budget  atomic.Pointer[state.Budget] // from Run, for MemoryStats
}

func (tr *tracker) init(pipelines []*pipeline) {
	tr.live = map[tracked]struct{}{}
	tr.totals = map[string]*RestoreMetrics{}
	for _, p := range pipelines {
		tr.totals[p.cfg.Name] = &RestoreMetrics{}
	}
}

func (tr *tracker) add(t tracked) {
	tr.mu.Lock()
	tr.live[t] = struct{}{}
	tr.mu.Unlock()
}

func (tr *tracker) remove(t tracked) {
	tr.mu.Lock()
	delete(tr.live, t)
	tr.mu.Unlock()
}

func (tr *tracker) restored(pipeline string, records, bytes int64) {
	tr.mu.Lock()
	tr.totals[pipeline].Records += records
	tr.totals[pipeline].Bytes += bytes
	tr.mu.Unlock()
}

func (tr *tracker) restoreEnded(pipeline string, took time.Duration) {
	tr.mu.Lock()
	m := tr.totals[pipeline]
	m.Restores++
	m.Duration += took
	tr.mu.Unlock()
}

// Metrics returns a snapshot of the engine's tasks and counters. It is safe
// to call from any goroutine, before, during and after Run, and does not
// wait for the engine.
func (e *Engine) Metrics() Metrics {
	now := time.Now()
	e.track.mu.Lock()
	tasks := make([]tracked, 0, len(e.track.live))
	for t := range e.track.live {
		tasks = append(tasks, t)
	}
	m := Metrics{Generation: -1}
	if cl := e.client.Load(); cl != nil {
		m.MemberID, m.Generation = cl.GroupMetadata()
	}
	byName := map[string]*RestoreMetrics{}
	for _, p := range e.pipelines {
		m.Pipelines = append(m.Pipelines, p.counters(*e.track.totals[p.cfg.Name]))
	}
	e.track.mu.Unlock()
	m.Commits, m.FailedCommits = e.track.commits.ok.Load(), e.track.commits.failed.Load()
	if b := e.track.budget.Load(); b != nil {
		m.RocksDB = b.MemoryStats()
	}
	inputLag := map[string]*int64{}
	for i := range m.Pipelines {
		byName[m.Pipelines[i].Pipeline] = &m.Pipelines[i].Restore
		inputLag[m.Pipelines[i].Pipeline] = &m.Pipelines[i].InputLag
	}

	for _, t := range tasks {
		info := t.info(now)
		m.Tasks = append(m.Tasks, info)
		if l := inputLag[info.Pipeline]; l != nil {
			*l += info.InputLag
		}
		if info.State != Restoring {
			continue
		}
		pm := byName[info.Pipeline]
		pm.Tasks++
		if info.Restore.Waiting {
			pm.Waiting++
		}
		if info.Restore.Remaining > 0 {
			pm.Remaining += info.Restore.Remaining
		}
		pm.Rate += info.Restore.Rate
	}
	slices.SortFunc(m.Tasks, func(a, b TaskInfo) int {
		return cmp.Or(cmp.Compare(a.Pipeline, b.Pipeline), cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Role, b.Role), cmp.Compare(a.State, b.State))
	})
	for _, p := range m.Pipelines {
		r := &m.Restore
		r.Tasks += p.Restore.Tasks
		r.Waiting += p.Restore.Waiting
		r.Remaining += p.Restore.Remaining
		r.Rate += p.Restore.Rate
		r.Records += p.Restore.Records
		r.Bytes += p.Restore.Bytes
		r.Restores += p.Restore.Restores
		r.Duration += p.Restore.Duration
	}
	return m
}

// counters returns the pipeline's PipelineMetrics with restore's counters
// and its own.
func (p *pipeline) counters(restore RestoreMetrics) PipelineMetrics {
	c := &p.count
	pm := PipelineMetrics{
		Pipeline: p.cfg.Name, Restore: restore,
		Records: c.records.Load(), Emitted: c.emitted.Load(),
		Skipped: c.skipped.Load(), DeadLettered: c.deadLettered.Load(),
		FailedBatches: make(map[OnError]int64, len(batchOutcomes)),
	}
	for i, o := range batchOutcomes {
		pm.FailedBatches[o] = c.failed[i].Load()
	}
	return pm
}
