package engine

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/flowstate/flowstate/internal/field"
	"github.com/flowstate/flowstate/restore"
)

// RestoreConfig configures how tasks restore their stores from the
// changelogs. Zero fields take the defaults of EnsureDefaults.
type RestoreConfig struct {
	// FetchMaxBytes bounds one fetch response of a restore client, in bytes;
	// each restoring task has its own client, apart from the processing
	// consumer. Default 64 MiB. Kafka Streams: the restore consumer's
	// fetch.max.bytes (restore.consumer.fetch.max.bytes).
	FetchMaxBytes int `koanf:"fetch_max_bytes"`
	// FetchMaxPartitionBytes bounds one changelog partition's share of a
	// fetch, in bytes. Default 4 MiB (or FetchMaxBytes if smaller). Kafka
	// Streams: the restore consumer's max.partition.fetch.bytes.
	FetchMaxPartitionBytes int `koanf:"fetch_max_partition_bytes"`
	// SSTChunkBytes is how many bytes of keys and values a store rebuilt
	// from nothing collects before they are sorted, written to one SST
	// file and ingested. Default 64 MiB; -1 turns the SST path off. Kafka
	// Streams: none (it writes every restored record through memtables).
	SSTChunkBytes int `koanf:"sst_chunk_bytes"`
	// MaxParallel is how many tasks of the process replay changelogs at
	// once. A task waiting for a turn stays RESTORING; running tasks are
	// not held up. A task with nothing to replay needs no turn. Active
	// tasks' restores go before standbys' catch-ups, which hold at most
	// MaxParallel-1 turns (turns.go). Default 2.
	// Kafka Streams: none (each stream thread restores all its tasks).
	MaxParallel int `koanf:"max_parallel"`
	// OnTruncated is what a restore does when records after a store's
	// offset were deleted from its changelog (DeleteRecords, retention):
	// rebuild (default) clears the store and restores it from the log
	// start, fail fails the task with a *restore.TruncatedError. Kafka
	// Streams: none (a TaskCorruptedException wipes the store).
	OnTruncated restore.TruncatedPolicy `koanf:"on_truncated"`
	// ProgressInterval is the period of the "restore progress" log lines of
	// each task while it replays. Default 5s; negative turns them off (the
	// CLI does when it draws progress bars instead). Kafka Streams: none
	// (a StateRestoreListener).
	ProgressInterval time.Duration `koanf:"progress_interval"`
}

// EnsureDefaults fills zero fields with their defaults.
func (c *RestoreConfig) EnsureDefaults() {
	if c.FetchMaxBytes == 0 {
		c.FetchMaxBytes = restore.DefaultFetchMaxBytes
	}
	if c.FetchMaxPartitionBytes == 0 {
		c.FetchMaxPartitionBytes = min(restore.DefaultFetchMaxPartitionBytes, c.FetchMaxBytes)
	}
	if c.SSTChunkBytes == 0 {
		c.SSTChunkBytes = restore.DefaultSSTChunkBytes
	}
	if c.MaxParallel == 0 {
		c.MaxParallel = 2
	}
	if c.OnTruncated == "" {
		c.OnTruncated = restore.TruncatedRebuild
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = restore.DefaultProgressInterval
	}
}

// Validate reports every invalid field: a field.List keyed by the fields'
// config keys (fetch_max_bytes), which Config.Validate nests under
// restore. Call it after EnsureDefaults.
func (c *RestoreConfig) Validate() error {
	var errs field.List
	if c.FetchMaxBytes < 1<<10 || c.FetchMaxBytes > math.MaxInt32 {
		errs.Add("fetch_max_bytes", "%d is not between 1 KiB (1024) and 2 GiB", c.FetchMaxBytes)
	}
	if c.FetchMaxPartitionBytes < 1<<10 || c.FetchMaxPartitionBytes > math.MaxInt32 {
		errs.Add("fetch_max_partition_bytes", "%d is not between 1 KiB (1024) and 2 GiB", c.FetchMaxPartitionBytes)
	}
	if c.SSTChunkBytes < -1 || (c.SSTChunkBytes >= 0 && c.SSTChunkBytes < 1<<10) {
		errs.Add("sst_chunk_bytes", "%d is not -1 (off) or at least 1 KiB (1024)", c.SSTChunkBytes)
	}
	if c.MaxParallel < 1 {
		errs.Add("max_parallel", "%d is not at least 1", c.MaxParallel)
	}
	errs.Nest("on_truncated", c.OnTruncated.Validate())
	return errs.Err()
}

// restoreClientConfig is what every changelog client of the engine shares:
// the brokers, the restore fetch sizes, and read_committed under
// exactly-once. The standbys' Tailer takes it as it is.
func restoreClientConfig(cfg *Config, role string) restore.Config {
	rc := cfg.Restore
	return restore.Config{
		Brokers:                cfg.Brokers,
		ClientOpts:             cfg.clientOpts(role),
		FetchMaxBytes:          int32(rc.FetchMaxBytes),
		FetchMaxPartitionBytes: int32(rc.FetchMaxPartitionBytes),
		ReadCommitted:          cfg.Guarantee == ExactlyOnce,
	}
}

// restoreConfig is the restore.Config of r's restore or catch-up: the
// engine's settings, a turn among MaxParallel, and a listener that keeps
// r's progress for Metrics before passing each event on to the user's.
func restoreConfig(env *taskEnv, r *replica, standby bool) restore.Config {
	c := restoreClientConfig(env.cfg, ClientRestore)
	rc := env.cfg.Restore
	c.SSTChunkBytes = rc.SSTChunkBytes
	c.OnTruncated = rc.OnTruncated
	c.ProgressInterval = rc.ProgressInterval
	c.Task = r.name
	c.Logger = r.log
	c.Listener = restoreListener(env, r)
	c.Acquire = func(ctx context.Context) (func(), error) { return acquireTurn(ctx, env.turns, r, standby) }
	c.CrashPoints = env.cfg.CrashPoints
	return c
}

// acquireTurn waits for one of the engine's MaxParallel restore turns
// (turns.go).
func acquireTurn(ctx context.Context, turns *turnPool, r *replica, standby bool) (release func(), err error) {
	waited := false
	release, err = turns.acquire(ctx, standby, func() {
		waited = true
		r.rs.setWaiting(true)
		r.log.Info("restore waiting for a turn", "task", r.name, "max_parallel", turns.size, "standby", standby)
	})
	if waited {
		r.rs.setWaiting(false)
	}
	return release, err
}

func restoreListener(env *taskEnv, r *replica) restore.Listener {
	user := env.listener.Restore
	pipeline := r.pl.cfg.Name
	return restore.Listener{
		Begin: func(b restore.BeginInfo) {
			r.rs.begin(b.Remaining)
			if user.Begin != nil {
				user.Begin(b)
			}
		},
		Batch: func(b restore.BatchInfo) {
			r.rs.batch(b.Restored, b.Remaining)
			env.track.restored(pipeline, int64(b.Records), b.Bytes)
			if user.Batch != nil {
				user.Batch(b)
			}
		},
		End: func(i restore.EndInfo) {
			r.rs.end(i.Restored)
			env.track.restoreEnded(pipeline, i.Took)
			if user.End != nil {
				user.End(i)
			}
		},
	}
}

// restoreStatus is a task's current or last restore, written from the
// task's goroutine and read by Metrics.
type restoreStatus struct {
	mu        sync.Mutex
	waiting   bool      // for a turn
	begun     time.Time // Begin event; zero before
	ended     time.Time // End event; zero while replaying
	total     int64     // offsets to replay, from Begin
	restored  int64     // records replayed
	remaining int64     // offsets left
}

func (s *restoreStatus) setWaiting(w bool) {
	s.mu.Lock()
	s.waiting = w
	s.mu.Unlock()
}

func (s *restoreStatus) begin(remaining int64) {
	s.mu.Lock()
	s.begun, s.ended = time.Now(), time.Time{}
	s.total, s.remaining, s.restored = remaining, remaining, 0
	s.mu.Unlock()
}

func (s *restoreStatus) batch(restored, remaining int64) {
	s.mu.Lock()
	s.restored, s.remaining = restored, remaining
	s.mu.Unlock()
}

func (s *restoreStatus) end(restored int64) {
	s.mu.Lock()
	s.restored, s.ended = restored, time.Now() // an interrupted restore keeps its remaining count
	s.mu.Unlock()
}

// info returns the task's TaskRestore as of now.
func (s *restoreStatus) info(now time.Time) TaskRestore {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := TaskRestore{Waiting: s.waiting, Restored: s.restored, Remaining: -1, ETA: -1}
	if s.begun.IsZero() {
		return r
	}
	r.Remaining = s.remaining
	end := now
	if !s.ended.IsZero() {
		end = s.ended
	}
	r.Took = end.Sub(s.begun)
	switch {
	case s.remaining == 0:
		r.ETA = 0
	case s.ended.IsZero() && r.Took > 0:
		// Only a restore in progress has a rate: a finished one adds
		// nothing to the process's current restore rate.
		r.Rate = float64(s.restored) / r.Took.Seconds()
		r.ETA = restore.ETA(s.total-s.remaining, s.remaining, r.Took)
	}
	return r
}
