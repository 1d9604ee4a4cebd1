package observe

import (
	"time"

	"github.com/flowstate/flowstate/engine"
)

// Status is the JSON of /status.
type Status struct {
	ApplicationID string       `json:"application_id"`
	InstanceID    string       `json:"instance_id,omitempty"`
	MemberID      string       `json:"member_id"`
	Generation    int32        `json:"generation"` // -1 before the process joined its group
	Version       string       `json:"version"`
	Addr          string       `json:"addr,omitempty"` // the http_addr this document came from
	Guarantee     string       `json:"processing_guarantee,omitempty"`
	Tasks         []TaskStatus `json:"tasks"`
	// Pipelines are the pipelines' counters and gauges.
	Pipelines []PipelineStatus `json:"pipelines,omitempty"`
	// Commits and FailedCommits count the commits (counters).
	Commits       int64 `json:"commits"`
	FailedCommits int64 `json:"failed_commits"`
	// RocksDB is the stores' memory, in bytes.
	RocksDB *RocksDBStatus `json:"rocksdb,omitempty"`
	// History is the last minutes of the process's throughput and lag,
	// oldest first (the status page's charts).
	History []Sample `json:"history,omitempty"`
	// Members are the group's members as the group coordinator describes
	// them; empty when the group could not be described.
	Members []Member `json:"members,omitempty"`
	// MembersError says why Members is empty, if it is.
	MembersError string `json:"members_error,omitempty"`
}

// TaskStatus is one task in /status. Durations are in seconds; -1 is
// unknown.
type TaskStatus struct {
	Task      string  `json:"task"`
	Pipeline  string  `json:"pipeline"`
	Partition int32   `json:"partition"`
	Role      string  `json:"role"` // active, standby or warm-up
	Lag       int64   `json:"lag"`  // changelog offsets the stores are behind
	InputLag  int64   `json:"input_lag"`
	State     string  `json:"state"`
	Waiting   bool    `json:"waiting,omitempty"` // for a restore turn
	Restored  int64   `json:"restored"`
	Remaining int64   `json:"remaining"`
	Rate      float64 `json:"rate"`
	ETA       float64 `json:"eta_seconds"`
	Took      float64 `json:"restore_seconds"`
	// Restarts counts the task's restarts after failures; Error is its
	// last failure, naming the pipeline, partition, module and cause;
	// RestartIn is the seconds until a FAILED task restarts, -1 when it
	// does not (restart: never).
	Restarts  int     `json:"restarts"`
	Error     string  `json:"error,omitempty"`
	RestartIn float64 `json:"restart_in_seconds,omitempty"`
}

// PipelineStatus is one pipeline in /status.
type PipelineStatus struct {
	Pipeline      string           `json:"pipeline"`
	Records       int64            `json:"records"`
	Emitted       int64            `json:"emitted"`
	Skipped       int64            `json:"skipped"`
	DeadLettered  int64            `json:"dead_lettered"`
	FailedBatches map[string]int64 `json:"failed_batches"`
	InputLag      int64            `json:"input_lag"`
	Restored      int64            `json:"restored"`
	RestoredBytes int64            `json:"restored_bytes"`
}

// RocksDBStatus is the RocksDB memory in /status.
type RocksDBStatus struct {
	BudgetBytes      uint64 `json:"budget_bytes"`
	BlockCacheUsage  uint64 `json:"block_cache_usage_bytes"`
	BlockCachePinned uint64 `json:"block_cache_pinned_bytes"`
	MemtableBytes    uint64 `json:"memtable_bytes"`
	TableReaders     uint64 `json:"table_readers_bytes"`
	Databases        int    `json:"databases"`
}

// Sample is one point of Status.History.
type Sample struct {
	Time     int64   `json:"t"`        // Unix milliseconds
	Rate     float64 `json:"rate"`     // input records per second since the previous sample
	InputLag int64   `json:"lag"`      // consumer lag, all pipelines
	Restore  int64   `json:"restore"`  // changelog offsets the restoring tasks have left
	Emitted  float64 `json:"out_rate"` // emitted records per second
}

// Member is one member of the application's group.
type Member struct {
	MemberID   string `json:"member_id"`
	InstanceID string `json:"instance_id,omitempty"`
	ClientHost string `json:"client_host"`
	Partitions int    `json:"partitions"` // input partitions assigned
	Self       bool   `json:"self,omitempty"`
}

// NewStatus returns the /status document of a process running cfg, of
// flowstate version, from its engine's metrics m.
func NewStatus(cfg engine.Config, version string, m engine.Metrics) Status {
	doc := Status{ApplicationID: cfg.ApplicationID, InstanceID: cfg.InstanceID, MemberID: m.MemberID, Generation: m.Generation,
		Version: version, Guarantee: string(cfg.Guarantee), Tasks: []TaskStatus{},
		Commits: m.Commits, FailedCommits: m.FailedCommits}
	for _, t := range m.Tasks {
		eta := -1.0
		if t.Restore.ETA >= 0 {
			eta = t.Restore.ETA.Seconds()
		}
		ts := TaskStatus{
			Task: t.Task, Pipeline: t.Pipeline, Partition: t.Partition, Role: t.Role, Lag: t.Lag, InputLag: t.InputLag,
			State: t.State.String(), Waiting: t.Restore.Waiting,
			Restored: t.Restore.Restored, Remaining: t.Restore.Remaining,
			Rate: t.Restore.Rate, ETA: eta, Took: t.Restore.Took.Seconds(),
			Restarts: t.Restarts, Error: t.Error,
		}
		if t.State == engine.Failed {
			ts.RestartIn = -1
			if !t.RestartAt.IsZero() {
				ts.RestartIn = max(time.Until(t.RestartAt).Seconds(), 0)
			}
		}
		doc.Tasks = append(doc.Tasks, ts)
	}
	for _, p := range m.Pipelines {
		ps := PipelineStatus{Pipeline: p.Pipeline, Records: p.Records, Emitted: p.Emitted, Skipped: p.Skipped,
			DeadLettered: p.DeadLettered, InputLag: p.InputLag, Restored: p.Restore.Records, RestoredBytes: p.Restore.Bytes,
			FailedBatches: map[string]int64{}}
		for o, n := range p.FailedBatches {
			ps.FailedBatches[string(o)] = n
		}
		doc.Pipelines = append(doc.Pipelines, ps)
	}
	r := m.RocksDB
	if r.BudgetBytes > 0 {
		rs := &RocksDBStatus{BudgetBytes: r.BudgetBytes, BlockCacheUsage: r.BlockCacheUsage, BlockCachePinned: r.BlockCachePinned, Databases: r.Databases}
		for _, s := range r.Stores {
			rs.MemtableBytes += s.MemtableBytes
			rs.TableReaders += s.TableReadersBytes
		}
		doc.RocksDB = rs
	}
	return doc
}

// history keeps the samples of Status.History: one per sampleEvery, for
// historyLen.
type history struct {
	samples []Sample
	last    engine.Metrics
	lastAt  time.Time
}

const (
	sampleEvery = 2 * time.Second
	historyLen  = 300 // ten minutes
)

func (h *history) add(now time.Time, m engine.Metrics) {
	s := Sample{Time: now.UnixMilli()}
	var records, emitted, lastRecords, lastEmitted int64
	for _, p := range m.Pipelines {
		records += p.Records
		emitted += p.Emitted
		s.InputLag += p.InputLag
		s.Restore += p.Restore.Remaining
	}
	for _, p := range h.last.Pipelines {
		lastRecords += p.Records
		lastEmitted += p.Emitted
	}
	if !h.lastAt.IsZero() {
		if d := now.Sub(h.lastAt).Seconds(); d > 0 {
			s.Rate = float64(records-lastRecords) / d
			s.Emitted = float64(emitted-lastEmitted) / d
		}
	}
	h.last, h.lastAt = m, now
	if len(h.samples) == historyLen {
		h.samples = append(h.samples[:0], h.samples[1:]...)
	}
	h.samples = append(h.samples, s)
}
