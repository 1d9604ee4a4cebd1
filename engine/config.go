package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/flowstate/flowstate/host"
	"github.com/flowstate/flowstate/internal/crashpoint"
	"github.com/flowstate/flowstate/state"
)

// Guarantee is a processing guarantee.
type Guarantee string

// The processing guarantees.
const (
	AtLeastOnce Guarantee = "at_least_once"
	ExactlyOnce Guarantee = "exactly_once"
)

// Config configures an Engine. Zero values take the defaults of
// EnsureDefaults.
type Config struct {
	// ApplicationID names the consumer group, prefixes changelog topics
	// (<application_id>-<store>-changelog) and the state directory. Kafka
	// Streams: application.id.
	ApplicationID string
	// Brokers are the seed brokers, host:port. Kafka Streams:
	// bootstrap.servers.
	Brokers []string
	// StateDir holds one RocksDB per task and the module compilation cache.
	// Default ".state". Kafka Streams: state.dir.
	StateDir string
	// CacheDir holds compiled modules, so that a restart skips compiling.
	// Default <state_dir>/wasm-cache.
	CacheDir string
	// CommitInterval is how often each task flushes its write buffer to the
	// changelog and RocksDB and the input offsets are committed. Default 1s,
	// 100ms under exactly-once. Kafka Streams: commit.interval.ms (30s, or
	// 100ms under exactly-once).
	CommitInterval time.Duration
	// Guarantee is the processing guarantee. Default at_least_once. Kafka
	// Streams: processing.guarantee.
	Guarantee Guarantee
	// InstanceID makes the process a static member of the group: a restart
	// within SessionTimeout gets its partitions back without a rebalance.
	// Default "" (dynamic membership). Kafka Streams: group.instance.id.
	InstanceID string
	// SessionTimeout is how long the group waits for a silent member before
	// moving its partitions. Default 45s. Kafka Streams: session.timeout.ms.
	SessionTimeout time.Duration
	// Pipelines are the processors to run; at least one.
	Pipelines []Pipeline
	// RocksDB is the memory budget shared by every store of the process.
	RocksDB state.BudgetConfig
	// Restore configures restoring stores from their changelogs.
	Restore RestoreConfig
	// StateCleanupDelay is how long the directory of a task that left the
	// process (its partition was revoked, or the engine stopped) is kept
	// before it is deleted, so that a task coming back within it restores
	// only what its changelogs gained meanwhile (janitor.go). Directories
	// found at startup are deleted if no task takes them within the delay.
	// Default 10m. Kafka Streams: state.cleanup.delay.ms.
	StateCleanupDelay time.Duration
	// NumStandbyReplicas is how many standby copies of each stateful task
	// the group keeps on other processes, each tailing the task's
	// changelogs into its own store, so that a failover restores only the
	// tail (standby.go). Default 0. Kafka Streams: num.standby.replicas.
	NumStandbyReplicas int
	// MaxWarmupReplicas bounds the tasks kept on a caught-up process while
	// a warm-up copy fills on the process they should move to (a member
	// that joined, say), instead of moving them at once and restoring
	// while they do not run. Negative turns warm-ups off. Default 2.
	// Kafka Streams: max.warmup.replicas (KIP-441).
	MaxWarmupReplicas int
	// AcceptableRecoveryLag is the changelog offsets a copy may lag and
	// still count as caught up: a task moves to such a copy at once, and to
	// any other only by a warm-up. Default 10,000. Kafka Streams:
	// acceptable.recovery.lag.
	AcceptableRecoveryLag int64
	// ProbingRebalanceInterval is how often the group leader, while
	// warm-ups are under way, asks for a rebalance to see whether they have
	// caught up. Default 10m. Kafka Streams: probing.rebalance.interval.ms.
	ProbingRebalanceInterval time.Duration
	// Rack names where this process runs (a rack, a zone). When members
	// set it, the standbys of a task go to other racks than its active
	// when they can. Default "" (no rack). Kafka Streams: client.rack with
	// rack.aware.assignment.tags (KIP-708).
	Rack string
	// CreateTopics creates missing input and output topics (with
	// TopicPartitions partitions) instead of failing. Changelog topics are
	// always created when missing. Used by `flowstate dev`.
	CreateTopics bool
	// TopicPartitions is the partition count of topics made by CreateTopics.
	// Default 4.
	TopicPartitions int
	// Logger receives the engine's logs. Default: discard.
	Logger *slog.Logger
	// CrashPoints, test-only, kills the process at named points of the
	// commit path and the restore (internal/crashpoint); nil in production.
	CrashPoints *crashpoint.Set `koanf:"-"`
}

// Pipeline is one processor: a module, the topics it reads and writes, and
// the stores it owns.
type Pipeline struct {
	// Name identifies the pipeline in logs, metrics and state paths.
	Name string
	// Module is the path of the .wasm file.
	Module string
	// Inputs are the topics the pipeline consumes; several inputs must be
	// co-partitioned (same partition count, same keying).
	Inputs []string
	// Outputs are the topics the module may emit to.
	Outputs []string
	// Stores are the names of the pipeline's key-value stores. Store names
	// are unique across the pipelines of an application.
	Stores []string
	// MaxBatchRecords bounds the records of one guest call. Default 1000.
	MaxBatchRecords int
	// Limits are the module's sandbox limits.
	Limits host.Limits
	// OnError is what happens to a record the module fails on (a guest
	// error, a trap, a timeout, a limit hit): stop the task (fail, the
	// default), skip the record, or write it to the dead-letter topic
	// (dead_letter); see onerror.go. Kafka Streams:
	// processing.exception.handler and errors.dead.letter.queue.topic.name.
	OnError OnError
}

// EnsureDefaults fills zero fields with their defaults.
func (c *Config) EnsureDefaults() {
	if c.MaxWarmupReplicas == 0 {
		c.MaxWarmupReplicas = 2
	}
	if c.AcceptableRecoveryLag == 0 {
		c.AcceptableRecoveryLag = 10_000
	}
	if c.ProbingRebalanceInterval == 0 {
		c.ProbingRebalanceInterval = 10 * time.Minute
	}
	if c.StateDir == "" {
		c.StateDir = ".state"
	}
	if c.CacheDir == "" {
		c.CacheDir = filepath.Join(c.StateDir, "wasm-cache")
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = time.Second
		if c.Guarantee == ExactlyOnce {
			// Outputs are visible to read_committed consumers only at
			// commit; Kafka Streams uses 100ms for the same reason.
			c.CommitInterval = 100 * time.Millisecond
		}
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 45 * time.Second
	}
	if c.Guarantee == "" {
		c.Guarantee = AtLeastOnce
	}
	if c.TopicPartitions == 0 {
		c.TopicPartitions = 4
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.RocksDB.EnsureDefaults()
	c.Restore.EnsureDefaults()
	if c.StateCleanupDelay == 0 {
		c.StateCleanupDelay = 10 * time.Minute
	}
	for i := range c.Pipelines {
		p := &c.Pipelines[i]
		if p.MaxBatchRecords == 0 {
			p.MaxBatchRecords = 1000
		}
		if p.OnError == "" {
			p.OnError = OnErrorFail
		}
		p.Limits.EnsureDefaults()
	}
}

// Validate reports every invalid field, naming it.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.ApplicationID == "" {
		bad("application_id: required")
	}
	if len(c.Brokers) == 0 {
		bad("brokers: at least one host:port required")
	}
	if c.CommitInterval < 0 {
		bad("commit_interval: %s is negative", c.CommitInterval)
	}
	if c.SessionTimeout < 0 {
		bad("session_timeout: %s is negative", c.SessionTimeout)
	}
	switch c.Guarantee {
	case AtLeastOnce, ExactlyOnce:
	default:
		bad("processing_guarantee: %q is not at_least_once or exactly_once", c.Guarantee)
	}
	if c.NumStandbyReplicas < 0 {
		bad("num_standby_replicas: %d is negative", c.NumStandbyReplicas)
	}
	if c.AcceptableRecoveryLag < 0 {
		bad("acceptable_recovery_lag: %d is negative", c.AcceptableRecoveryLag)
	}
	if c.ProbingRebalanceInterval < 0 {
		bad("probing_rebalance_interval: %s is negative", c.ProbingRebalanceInterval)
	}
	if c.TopicPartitions < 0 {
		bad("topic partitions: %d is negative", c.TopicPartitions)
	}
	if len(c.Pipelines) == 0 {
		bad("pipelines: at least one pipeline required")
	}
	if err := c.RocksDB.Validate(); err != nil {
		joined, ok := err.(interface{ Unwrap() []error })
		if !ok {
			bad("rocksdb: %w", err)
		} else {
			for _, e := range joined.Unwrap() {
				bad("rocksdb: %w", e) // one line each, every line naming its key
			}
		}
	}
	errs = append(errs, c.Restore.validate()...)
	if c.StateCleanupDelay < 0 {
		bad("state_cleanup_delay: %s is negative", c.StateCleanupDelay)
	}
	names := map[string]bool{}
	stores := map[string]string{}
	for _, p := range c.Pipelines {
		at := "pipelines." + p.Name
		switch {
		case p.Name == "":
			bad("pipelines: a pipeline has no name")
		case names[p.Name]:
			bad("%s: duplicate pipeline name", at)
		}
		names[p.Name] = true
		if p.Module == "" {
			bad("%s.module: required (path of a .wasm file)", at)
		}
		if len(p.Inputs) == 0 {
			bad("%s.inputs: at least one topic required", at)
		}
		for _, s := range p.Stores {
			if s == "" {
				bad("%s.stores: empty store name", at)
			} else if other, ok := stores[s]; ok {
				bad("%s.stores: store %q is also a store of pipeline %q", at, s, other)
			}
			stores[s] = p.Name
		}
		if p.MaxBatchRecords < 0 {
			bad("%s.max_batch_records: %d is negative", at, p.MaxBatchRecords)
		}
		if err := p.Limits.Validate(); err != nil {
			bad("%s.limits: %w", at, err)
		}
		if err := validateOnError(at, p.OnError); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ChangelogTopic returns the changelog topic of a store.
func (c *Config) ChangelogTopic(store string) string {
	return c.ApplicationID + "-" + store + "-changelog"
}
