package engine

import (
	"log/slog"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowstate/flowstate/host"
	"github.com/flowstate/flowstate/internal/crashpoint"
	"github.com/flowstate/flowstate/internal/field"
	"github.com/flowstate/flowstate/restore"
	"github.com/flowstate/flowstate/state"
	"github.com/flowstate/flowstate/state/changelog"
)

// Guarantee is a processing guarantee.
type Guarantee string

// The processing guarantees.
const (
	AtLeastOnce Guarantee = "at_least_once"
	ExactlyOnce Guarantee = "exactly_once"
)

// Config configures an Engine. Zero fields take the defaults of
// EnsureDefaults. The koanf tags are the keys of flowstate's config file
// (cmd/flowstate); fields tagged "-" are set by code, not by the file.
type Config struct {
	// ApplicationID names the consumer group, prefixes changelog topics
	// (<application_id>-<store>-changelog) and the state directory.
	// Required. Kafka Streams: application.id.
	ApplicationID string `koanf:"application_id"`
	// Brokers are the seed brokers, host:port; `flowstate dev` replaces
	// them with its embedded broker. Required. Kafka Streams:
	// bootstrap.servers.
	Brokers []string `koanf:"brokers"`
	// StateDir holds one RocksDB per task, the module compilation cache
	// and, under `flowstate dev`, the embedded broker's data
	// (<state_dir>/broker). Default ".state". Kafka Streams: state.dir.
	StateDir string `koanf:"state_dir"`
	// CacheDir holds compiled modules, so that a restart skips compiling.
	// Default <state_dir>/wasm-cache.
	CacheDir string `koanf:"-"`
	// CommitInterval is how often each task flushes its write buffer to the
	// changelog and RocksDB and the input offsets are committed, a duration
	// such as "1s" in the config file. Default 1s, 100ms under
	// exactly-once. Kafka Streams: commit.interval.ms (30s, or 100ms under
	// exactly-once).
	CommitInterval time.Duration `koanf:"commit_interval"`
	// Guarantee is the processing guarantee: at_least_once (default) or
	// exactly_once. Kafka Streams: processing.guarantee.
	Guarantee Guarantee `koanf:"processing_guarantee"`
	// InstanceID makes the process a static member of the group: a restart
	// within SessionTimeout gets its partitions back without a rebalance.
	// Default "" (dynamic membership). Kafka Streams: group.instance.id.
	InstanceID string `koanf:"instance_id"`
	// SessionTimeout is how long the group waits for a silent member before
	// moving its partitions. Default 45s. Kafka Streams: session.timeout.ms.
	SessionTimeout time.Duration `koanf:"session_timeout"`
	// Pipelines are the processors to run; at least one. The config file
	// has them as a map keyed by pipeline name (so that
	// FLOWSTATE_PIPELINES__<NAME>__<KEY> addresses one), which its loader
	// turns into this list, sorted by name.
	Pipelines []Pipeline `koanf:"-"`
	// RocksDB is the memory budget shared by every store of the process.
	RocksDB state.BudgetConfig `koanf:"rocksdb"`
	// Restore configures restoring stores from their changelogs.
	Restore restore.Settings `koanf:"restore"`
	// StateCleanupDelay is how long the directory of a task that left the
	// process (its partition was revoked, or the engine stopped) is kept
	// before it is deleted, so that a task coming back within it restores
	// only what its changelogs gained meanwhile (janitor.go). Directories
	// found at startup are deleted if no task takes them within the delay.
	// Default 10m. Kafka Streams: state.cleanup.delay.ms.
	StateCleanupDelay time.Duration `koanf:"state_cleanup_delay"`
	// NumStandbyReplicas is how many standby copies of each stateful task
	// the group keeps on other processes, each tailing the task's
	// changelogs into its own store, so that a failover restores only the
	// tail (standby.go). Default 0. Kafka Streams: num.standby.replicas.
	NumStandbyReplicas int `koanf:"num_standby_replicas"`
	// MaxWarmupReplicas bounds the tasks kept on a caught-up process while
	// a warm-up copy fills on the process they should move to (a member
	// that joined, say), instead of moving them at once and restoring
	// while they do not run. 0 (or negative) turns warm-ups off. Nil takes
	// the default, 2. Kafka Streams: max.warmup.replicas (KIP-441).
	MaxWarmupReplicas *int `koanf:"max_warmup_replicas"`
	// AcceptableRecoveryLag is the changelog offsets a copy may lag and
	// still count as caught up: a task moves to such a copy at once, and to
	// any other only by a warm-up. 0 counts only a copy that has every
	// record. Nil takes the default, 10,000. Kafka Streams:
	// acceptable.recovery.lag.
	AcceptableRecoveryLag *int64 `koanf:"acceptable_recovery_lag"`
	// ProbingRebalanceInterval is how often the group leader, while
	// warm-ups are under way, asks for a rebalance to see whether they have
	// caught up. Default 10m. Kafka Streams: probing.rebalance.interval.ms.
	ProbingRebalanceInterval time.Duration `koanf:"probing_rebalance_interval"`
	// Rack names where this process runs (a rack, a zone). When members
	// set it, the standbys of a task go to other racks than its active
	// when they can. Default "" (no rack). Kafka Streams: client.rack with
	// rack.aware.assignment.tags (KIP-708).
	Rack string `koanf:"rack"`
	// CreateTopics creates missing input and output topics (with
	// TopicPartitions partitions) instead of failing. Changelog topics are
	// always created when missing. Used by `flowstate dev`.
	CreateTopics bool `koanf:"-"`
	// TopicPartitions is the partition count of topics made by CreateTopics.
	// Default 4.
	TopicPartitions int `koanf:"-"`
	// Logger receives the engine's logs. Default: discard.
	Logger *slog.Logger `koanf:"-"`
	// ClientOpts, when set, returns extra options for each Kafka client the
	// engine makes, by its role (ClientConsumer, ClientAdmin,
	// ClientStandby, ClientRestore; hooks.go): metrics hooks, a logger,
	// TLS or SASL. It is called once per client.
	ClientOpts func(role string) []kgo.Opt `koanf:"-"`
	// Hooks receive timing events for an exporter's histograms (hooks.go).
	Hooks Hooks `koanf:"-"`
	// CrashPoints, test-only, kills the process at named points of the
	// commit path and the restore (internal/crashpoint); nil in production.
	CrashPoints *crashpoint.Set `koanf:"-"`
}

// Pipeline is one processor: a module, the topics it reads and writes, and
// the stores it owns.
type Pipeline struct {
	// Name identifies the pipeline in logs, metrics and state paths. In the
	// config file it is the pipeline's key under pipelines; it must not
	// contain a dot.
	Name string `koanf:"-"`
	// Module is the path of the .wasm file, relative to the current
	// directory (not to a config file). Required.
	Module string `koanf:"module"`
	// Inputs are the topics the pipeline consumes, at least one; several
	// inputs must be co-partitioned (same partition count, same keying).
	Inputs []string `koanf:"inputs"`
	// Outputs are the topics the module may emit to.
	Outputs []string `koanf:"outputs"`
	// Stores are the names of the pipeline's key-value stores, each
	// changelogged to <application_id>-<store>-changelog. Store names are
	// unique across the pipelines of an application.
	Stores []string `koanf:"stores"`
	// MaxBatchRecords bounds the records of one guest call. Default 1000.
	// Kafka Streams: none (it calls a processor per record).
	MaxBatchRecords int `koanf:"max_batch_records"`
	// Limits are the module's sandbox limits.
	Limits host.Limits `koanf:"limits"`
	// OnError is what happens to a record the module fails on (a guest
	// error, a trap, a timeout, a limit hit): stop the task (fail, the
	// default), skip the record, or write it to the dead-letter topic
	// (dead_letter); see onerror.go. Kafka Streams:
	// processing.exception.handler and errors.dead.letter.queue.topic.name.
	OnError OnError `koanf:"on_error"`
	// OnFailure is what a failed task does to the process: fail_task (the
	// default) keeps the failure inside the task, which goes FAILED and
	// restarts as Restart says; stop_process stops the engine with the
	// task's error (failure.go). Kafka Streams:
	// StreamsUncaughtExceptionHandler (REPLACE_THREAD, SHUTDOWN_CLIENT).
	OnFailure OnFailure `koanf:"on_failure"`
	// Restart says when a failed task starts again (failure.go).
	Restart Restart `koanf:"restart"`
}

// Defaults of the Config fields whose zero is meaningful, used for nil.
const (
	DefaultMaxWarmupReplicas     = 2
	DefaultAcceptableRecoveryLag = 10_000
)

// maxWarmups is MaxWarmupReplicas, or its default when unset.
func (c *Config) maxWarmups() int {
	if c.MaxWarmupReplicas == nil {
		return DefaultMaxWarmupReplicas
	}
	return *c.MaxWarmupReplicas
}

// acceptableLag is AcceptableRecoveryLag, or its default when unset.
func (c *Config) acceptableLag() int64 {
	if c.AcceptableRecoveryLag == nil {
		return DefaultAcceptableRecoveryLag
	}
	return *c.AcceptableRecoveryLag
}

// EnsureDefaults fills zero fields with their defaults, and nil pointers.
func (c *Config) EnsureDefaults() {
	if c.MaxWarmupReplicas == nil {
		c.MaxWarmupReplicas = new(DefaultMaxWarmupReplicas)
	}
	if c.AcceptableRecoveryLag == nil {
		c.AcceptableRecoveryLag = new(int64(DefaultAcceptableRecoveryLag))
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
		if p.OnFailure == "" {
			p.OnFailure = OnFailureFailTask
		}
		p.Restart.EnsureDefaults()
		p.Limits.EnsureDefaults()
	}
}

// Validate reports every invalid field: a field.List with one *field.Error
// per field, keyed by its full config key (rocksdb.compression,
// pipelines.wordcount.limits.memory_mb). Call it after EnsureDefaults.
func (c *Config) Validate() error {
	var errs field.List
	if c.ApplicationID == "" {
		errs.Add("application_id", "required")
	}
	if len(c.Brokers) == 0 {
		errs.Add("brokers", "at least one host:port required")
	}
	if c.CommitInterval < 0 {
		errs.Add("commit_interval", "%s is negative", c.CommitInterval)
	}
	if c.SessionTimeout < 0 {
		errs.Add("session_timeout", "%s is negative", c.SessionTimeout)
	}
	switch c.Guarantee {
	case AtLeastOnce, ExactlyOnce:
	default:
		errs.Add("processing_guarantee", "%q is not at_least_once or exactly_once", c.Guarantee)
	}
	if c.NumStandbyReplicas < 0 {
		errs.Add("num_standby_replicas", "%d is negative", c.NumStandbyReplicas)
	}
	if c.AcceptableRecoveryLag == nil {
		errs.Add("acceptable_recovery_lag", "unset (call EnsureDefaults)")
	} else if *c.AcceptableRecoveryLag < 0 {
		errs.Add("acceptable_recovery_lag", "%d is negative", *c.AcceptableRecoveryLag)
	}
	if c.MaxWarmupReplicas == nil {
		errs.Add("max_warmup_replicas", "unset (call EnsureDefaults)")
	}
	if c.ProbingRebalanceInterval < 0 {
		errs.Add("probing_rebalance_interval", "%s is negative", c.ProbingRebalanceInterval)
	}
	if c.TopicPartitions < 0 {
		errs.Add("topic_partitions", "%d is negative", c.TopicPartitions)
	}
	if len(c.Pipelines) == 0 {
		errs.Add("pipelines", "at least one pipeline required")
	}
	errs.Nest("rocksdb", c.RocksDB.Validate())
	errs.Nest("restore", c.Restore.Validate())
	if c.StateCleanupDelay < 0 {
		errs.Add("state_cleanup_delay", "%s is negative", c.StateCleanupDelay)
	}
	names := map[string]bool{}
	stores := map[string]string{}
	for _, p := range c.Pipelines {
		at := "pipelines." + p.Name
		switch {
		case p.Name == "":
			errs.Add("pipelines", "a pipeline has no name")
		case names[p.Name]:
			errs.Add(at, "duplicate pipeline name")
		}
		names[p.Name] = true
		if p.Module == "" {
			errs.Add(at+".module", "required (path of a .wasm file)")
		}
		if len(p.Inputs) == 0 {
			errs.Add(at+".inputs", "at least one topic required")
		}
		for _, s := range p.Stores {
			if s == "" {
				errs.Add(at+".stores", "empty store name")
			} else if other, ok := stores[s]; ok {
				errs.Add(at+".stores", "store %q is also a store of pipeline %q", s, other)
			}
			stores[s] = p.Name
		}
		if p.MaxBatchRecords < 0 {
			errs.Add(at+".max_batch_records", "%d is negative", p.MaxBatchRecords)
		}
		errs.Nest(at+".limits", p.Limits.Validate())
		errs.Nest(at+".on_error", p.OnError.validate())
		errs.Nest(at+".on_failure", p.OnFailure.validate())
		errs.Nest(at+".restart", p.Restart.Validate())
	}
	return errs.Err()
}

// ChangelogTopic returns the changelog topic of a store.
func (c *Config) ChangelogTopic(store string) string {
	return changelog.Topic(c.ApplicationID, store)
}

// FieldError is one invalid config field as Validate reports it: Key is
// the full dotted config key (restore.max_parallel), Msg what is wrong
// with the value. It is internal/field's type, so that callers outside
// the module can read the fields: with errors.As for the first, with
// FieldErrors for all.
type FieldError = field.Error

// FieldErrors returns the field errors in err, an error of Validate (a
// list of them), in the order found; nil for nil.
func FieldErrors(err error) []*FieldError { return field.Errors(err) }
