package config

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/flowstate/flowstate/engine"
	"github.com/flowstate/flowstate/host"
	"github.com/flowstate/flowstate/internal/field"
	"github.com/flowstate/flowstate/restore"
	"github.com/flowstate/flowstate/state"
)

// clearEnv removes every FLOWSTATE_ variable for the test, restoring them
// afterwards, so that the caller's environment does not leak into configs.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, EnvPrefix) {
			t.Setenv(name, "") // restores the old value at cleanup
			os.Unsetenv(name)
		}
	}
}

// writeFile writes content to name in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// testFlags returns a flag set with a flag that sets state_dir, one that
// sets log_level and one that is not a config key, and its FlagKeys.
func testFlags() (*pflag.FlagSet, map[string]string) {
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.String("state-dir", "", "")
	fs.String("log-level", "", "")
	fs.String("other", "", "")
	return fs, map[string]string{"state-dir": "state_dir", "log-level": "log_level"}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	module := writeFile(t, dir, "wordcount.wasm", "\x00asm")
	other := writeFile(t, dir, "other.wasm", "\x00asm")
	// base is a valid config; cases add to it or replace it.
	base := `
application_id: wordcount
brokers: [localhost:9092]
pipelines:
  wordcount:
    module: ` + module + `
    inputs: [sentences]
    outputs: [word-counts]
    stores: [counts]
`
	tests := []struct {
		name  string
		yaml  string            // config file; none when empty
		env   map[string]string // FLOWSTATE_ variables
		flags []string          // flags of testFlags
		dev   bool              // load for flowstate dev
		want  func(t *testing.T, c *Config)
		// errs are substrings of the error, each on a line of its own;
		// none means success.
		errs []string
		// notErrs are substrings no line of the error may have.
		notErrs []string
	}{
		{
			name: "defaults",
			yaml: base,
			want: func(t *testing.T, c *Config) {
				e := c.Engine
				check(t, "application_id", e.ApplicationID, "wordcount")
				check(t, "brokers", strings.Join(e.Brokers, ","), "localhost:9092")
				check(t, "state_dir", e.StateDir, ".state")
				check(t, "commit_interval", e.CommitInterval, time.Second)
				check(t, "processing_guarantee", e.Guarantee, engine.AtLeastOnce)
				check(t, "log_level", c.LogLevel, slog.LevelInfo)
				check(t, "rocksdb.block_cache_mb", e.RocksDB.BlockCacheMB, 64)
				check(t, "rocksdb.max_open_files", e.RocksDB.MaxOpenFiles, -1)
				check(t, "dev.partitions", c.Dev.Partitions, 4)
				check(t, "dev.port", c.Dev.Port, 0)
				check(t, "pipelines", len(e.Pipelines), 1)
				p := e.Pipelines[0]
				check(t, "name", p.Name, "wordcount")
				check(t, "module", p.Module, module)
				check(t, "inputs", strings.Join(p.Inputs, ","), "sentences")
				check(t, "outputs", strings.Join(p.Outputs, ","), "word-counts")
				check(t, "stores", strings.Join(p.Stores, ","), "counts")
				check(t, "max_batch_records", p.MaxBatchRecords, 1000)
				check(t, "limits.call_timeout", p.Limits.CallTimeout, host.DefaultCallTimeout)
				check(t, "limits.memory_mb", p.Limits.MemoryMB, host.DefaultMemoryMB)
				check(t, "on_error", p.OnError, engine.OnErrorFail)
				check(t, "state_cleanup_delay", e.StateCleanupDelay, 10*time.Minute)
				check(t, "http_addr", c.HTTPAddr, "")
				check(t, "restore", e.Restore, restore.Settings{
					FetchMaxBytes: 64 << 20, FetchMaxPartitionBytes: 4 << 20, SSTChunkBytes: 64 << 20, MaxParallel: 2, OnTruncated: restore.TruncatedRebuild,
					ProgressInterval: restore.DefaultProgressInterval,
				})
			},
		},
		{
			name: "every key",
			yaml: `
application_id: app
brokers: [a:1, b:2]
state_dir: /tmp/st
commit_interval: 250ms
processing_guarantee: exactly_once
log_level: debug
rocksdb:
  block_cache_mb: 32
  write_buffer_mb: 16
  max_open_files: 100
  max_background_jobs: 4
  compaction: universal
  compression: lz4
  stores: {s2: {compaction: level, compression: zstd}}
state_cleanup_delay: 1h
num_standby_replicas: 2
rack: eu-1a
max_warmup_replicas: 3
acceptable_recovery_lag: 500
probing_rebalance_interval: 1m
http_addr: 127.0.0.1:9100
restore: {fetch_max_bytes: 1048576, fetch_max_partition_bytes: 65536, sst_chunk_bytes: -1, max_parallel: 4, on_truncated: fail, progress_interval: -1s}
pipelines:
  zeta:
    module: ` + other + `
    inputs: [z]
    restart: never
  alpha:
    module: ` + module + `
    inputs: [a1, a2]
    outputs: [o]
    stores: [s1, s2]
    max_batch_records: 10
    on_error: dead_letter
    on_failure: stop_process
    restart: {initial_backoff: 100ms, max_backoff: 10s, backoff_multiplier: 2, jitter_factor: 0, reset_backoff_threshold: 5m}
    limits: {memory_mb: 64, call_timeout: 2s, max_output_records: 5, max_output_bytes: 6, max_key_bytes: 7, max_value_bytes: 8, max_open_iterators: 9, max_write_bytes: 10}
dev: {partitions: 8, port: 19092}
`,
			want: func(t *testing.T, c *Config) {
				e := c.Engine
				check(t, "brokers", strings.Join(e.Brokers, ","), "a:1,b:2")
				check(t, "state_dir", e.StateDir, "/tmp/st")
				check(t, "commit_interval", e.CommitInterval, 250*time.Millisecond)
				check(t, "processing_guarantee", e.Guarantee, engine.ExactlyOnce)
				check(t, "log_level", c.LogLevel, slog.LevelDebug)
				check(t, "rocksdb.write_buffer_mb", e.RocksDB.WriteBufferMB, 16)
				check(t, "rocksdb.max_open_files", e.RocksDB.MaxOpenFiles, 100)
				check(t, "rocksdb.max_background_jobs", e.RocksDB.MaxBackgroundJobs, 4)
				check(t, "rocksdb.compaction", e.RocksDB.Compaction, "universal")
				check(t, "rocksdb.compression", e.RocksDB.Compression, "lz4")
				check(t, "rocksdb.stores", len(e.RocksDB.Stores), 1)
				check(t, "rocksdb.stores.s2", e.RocksDB.Stores["s2"], state.StoreOptions{Compaction: "level", Compression: "zstd"})
				check(t, "dev.partitions", c.Dev.Partitions, 8)
				check(t, "dev.port", c.Dev.Port, 19092)
				check(t, "state_cleanup_delay", e.StateCleanupDelay, time.Hour)
				check(t, "num_standby_replicas", e.NumStandbyReplicas, 2)
				check(t, "rack", e.Rack, "eu-1a")
				check(t, "max_warmup_replicas", *e.MaxWarmupReplicas, 3)
				check(t, "acceptable_recovery_lag", *e.AcceptableRecoveryLag, int64(500))
				check(t, "probing_rebalance_interval", e.ProbingRebalanceInterval, time.Minute)
				check(t, "http_addr", c.HTTPAddr, "127.0.0.1:9100")
				check(t, "restore", e.Restore, restore.Settings{
					FetchMaxBytes: 1 << 20, FetchMaxPartitionBytes: 64 << 10, SSTChunkBytes: -1, MaxParallel: 4, OnTruncated: restore.TruncatedFail, ProgressInterval: -time.Second,
				})
				check(t, "pipelines", len(e.Pipelines), 2)
				p := e.Pipelines[0] // sorted by name
				check(t, "name", p.Name, "alpha")
				check(t, "stores", strings.Join(p.Stores, ","), "s1,s2")
				check(t, "max_batch_records", p.MaxBatchRecords, 10)
				check(t, "on_error", p.OnError, engine.OnErrorDeadLetter)
				check(t, "limits", p.Limits, host.Limits{
					MemoryMB: 64, CallTimeout: 2 * time.Second, MaxOutputRecords: 5, MaxOutputBytes: 6,
					MaxKeyBytes: 7, MaxValueBytes: 8, MaxOpenIterators: 9, MaxWriteBytes: 10,
				})
				check(t, "on_failure", p.OnFailure, engine.OnFailureStopProcess)
				check(t, "restart.jitter_factor", *p.Restart.JitterFactor, 0.0)
				p.Restart.JitterFactor = nil
				check(t, "restart", p.Restart, engine.Restart{Strategy: engine.RestartExponentialDelay, InitialBackoff: 100 * time.Millisecond,
					MaxBackoff: 10 * time.Second, BackoffMultiplier: 2, ResetBackoffThreshold: 5 * time.Minute})
				check(t, "second name", e.Pipelines[1].Name, "zeta")
				check(t, "second on_failure", e.Pipelines[1].OnFailure, engine.OnFailureFailTask)
				check(t, "second restart", e.Pipelines[1].Restart.Strategy, engine.RestartNever)
			},
		},
		{
			name: "unknown key",
			yaml: strings.Replace(base, "    module:", "    modul: x\n    module:", 1),
			errs: []string{"pipelines.wordcount.modul: unknown key"},
		},
		{
			name: "unknown top-level and nested keys",
			yaml: base + "colour: red\nrocksdb: {cache_mb: 1}\n",
			errs: []string{"colour: unknown key", "rocksdb.cache_mb: unknown key"},
		},
		{
			name: "bad duration",
			yaml: base + "commit_interval: 1x\n",
			errs: []string{`commit_interval: "1x" is not a duration such as 500ms, 5s or 1m`},
		},
		{
			name: "duration without a unit",
			yaml: base + "    limits: {call_timeout: 5}\n",
			errs: []string{"pipelines.wordcount.limits.call_timeout: 5 has no unit"},
		},
		{
			name: "bad guarantee",
			yaml: base + "processing_guarantee: twice\n",
			errs: []string{`processing_guarantee: "twice" is not at_least_once or exactly_once`},
		},
		{
			name: "bad error policy",
			yaml: base + "    on_error: ignore\n",
			errs: []string{`pipelines.wordcount.on_error: "ignore" is not fail, skip or dead_letter`},
		},
		{
			name: "bad failure handling",
			yaml: base + "    on_failure: crash\n    restart: {strategy: sometimes, initial_backoff: 2m, max_backoff: 1m, backoff_multiplier: 0.5, jitter_factor: 2}\n",
			errs: []string{
				`pipelines.wordcount.on_failure: "crash" is not fail_task or stop_process`,
				`pipelines.wordcount.restart.backoff_multiplier: 0.5 is not a number of at least 1`,
				`pipelines.wordcount.restart.jitter_factor: 2 is not in [0, 1]`,
				`pipelines.wordcount.restart.max_backoff: 1m0s is below initial_backoff 2m0s`,
				`pipelines.wordcount.restart.strategy: "sometimes" is not exponential_delay or never`,
			},
		},
		{
			name: "bad restore settings",
			yaml: base + "restore: {fetch_max_bytes: 10, max_parallel: -1, on_truncated: ignore}\nstate_cleanup_delay: -1s\nhttp_addr: nowhere\n",
			errs: []string{
				"http_addr: \"nowhere\" is not host:port",
				"restore.fetch_max_bytes: 10 is not between 1 KiB (1024) and 2 GiB",
				"restore.max_parallel: -1 is not at least 1",
				`restore.on_truncated: "ignore" is not rebuild or fail`,
				"state_cleanup_delay: -1s is negative",
			},
		},
		{
			name: "bad store tuning",
			yaml: base + "rocksdb: {compaction: tiered, stores: {counts: {compression: gzip}, nope: {compaction: level}}}\n",
			errs: []string{
				`rocksdb.compaction: "tiered" is not one of [level universal]`,
				`rocksdb.stores.counts.compression: "gzip" is not one of [lz4 none snappy zstd]`,
				`rocksdb.stores.nope: no pipeline declares store "nope"`,
			},
		},
		{
			name: "bad log level",
			yaml: base + "log_level: loud\n",
			errs: []string{`log_level: "loud" is not debug, info, warn or error`},
		},
		{
			name: "bad type",
			yaml: base + "    max_batch_records: many\n",
			errs: []string{`pipelines.wordcount.max_batch_records: "many" is not an integer`},
		},
		{
			name: "wrong kinds",
			yaml: strings.Replace(base, "application_id: wordcount", "application_id: [a, b]", 1) + "    max_batch_records: 1.5\ncommit_interval: true\n",
			errs: []string{
				"application_id: want a string, got a list",
				"commit_interval: want a duration such as 500ms, 5s or 1m, got a boolean",
				"pipelines.wordcount.max_batch_records: 1.5 is not an integer",
			},
		},
		{
			name: "pipelines as a list",
			yaml: "application_id: a\nbrokers: [b:1]\npipelines:\n  - module: x\n",
			errs: []string{"pipelines: want a map, got a list (pipelines are keyed by name"},
		},
		{
			name: "missing module file",
			yaml: strings.Replace(base, module, "bin/plugins/nope.wasm", 1),
			errs: []string{"pipelines.wordcount.module: open bin/plugins/nope.wasm: no such file or directory"},
		},
		{
			name: "module is a directory",
			yaml: strings.Replace(base, module, dir, 1),
			errs: []string{"pipelines.wordcount.module: " + dir + " is a directory"},
		},
		{
			name: "no pipelines",
			yaml: "application_id: a\nbrokers: [b:1]\n",
			errs: []string{"pipelines: at least one pipeline required"},
		},
		{
			name: "dev needs no brokers",
			yaml: strings.Replace(base, "brokers: [localhost:9092]", "", 1),
			dev:  true,
			want: func(t *testing.T, c *Config) {},
		},
		{
			name: "run needs brokers",
			yaml: strings.Replace(base, "brokers: [localhost:9092]", "", 1),
			errs: []string{"brokers: at least one host:port required"},
		},
		{
			name: "every error at once",
			yaml: strings.Replace(base, "application_id: wordcount", "", 1) + "commit_interval: soon\nfoo: 1\n",
			errs: []string{"application_id: required", `commit_interval: "soon"`, "foo: unknown key"},
		},
		{
			name: "env override",
			yaml: base + "commit_interval: 1s\n",
			env:  map[string]string{"FLOWSTATE_COMMIT_INTERVAL": "2s", "FLOWSTATE_BROKERS": "x:1, y:2"},
			want: func(t *testing.T, c *Config) {
				check(t, "commit_interval", c.Engine.CommitInterval, 2*time.Second)
				check(t, "brokers", strings.Join(c.Engine.Brokers, ","), "x:1,y:2")
			},
		},
		{
			name: "nested env override",
			yaml: base,
			env: map[string]string{
				"FLOWSTATE_ROCKSDB__BLOCK_CACHE_MB":                 "128",
				"FLOWSTATE_PIPELINES__WORDCOUNT__MODULE":            other,
				"FLOWSTATE_PIPELINES__WORDCOUNT__LIMITS__MEMORY_MB": "32",
				"FLOWSTATE_PIPELINES__WORDCOUNT__INPUTS":            "a,b",
				"FLOWSTATE_DEV__PARTITIONS":                         "2",
				"FLOWSTATE_RESTORE__MAX_PARALLEL":                   "3",
				"FLOWSTATE_RESTORE__FETCH_MAX_BYTES":                "1048576",
				"FLOWSTATE_RESTORE__PROGRESS_INTERVAL":              "-1s",
				"FLOWSTATE_RESTORE__ON_TRUNCATED":                   "fail",
			},
			want: func(t *testing.T, c *Config) {
				check(t, "rocksdb.block_cache_mb", c.Engine.RocksDB.BlockCacheMB, 128)
				check(t, "restore", c.Engine.Restore, restore.Settings{
					FetchMaxBytes: 1 << 20, FetchMaxPartitionBytes: 1 << 20, SSTChunkBytes: 64 << 20, MaxParallel: 3, OnTruncated: restore.TruncatedFail,
					ProgressInterval: -time.Second,
				})
				p := c.Engine.Pipelines[0]
				check(t, "module", p.Module, other)
				check(t, "limits.memory_mb", p.Limits.MemoryMB, 32)
				check(t, "inputs", strings.Join(p.Inputs, ","), "a,b")
				check(t, "outputs from the file", strings.Join(p.Outputs, ","), "word-counts")
				check(t, "dev.partitions", c.Dev.Partitions, 2)
			},
		},
		{
			name: "env adds a pipeline",
			yaml: base,
			env: map[string]string{
				"FLOWSTATE_PIPELINES__UPPER__MODULE": other,
				"FLOWSTATE_PIPELINES__UPPER__INPUTS": "words",
			},
			want: func(t *testing.T, c *Config) {
				check(t, "pipelines", len(c.Engine.Pipelines), 2)
				check(t, "name", c.Engine.Pipelines[0].Name, "upper")
			},
		},
		{
			name: "env unknown key",
			yaml: base,
			env:  map[string]string{"FLOWSTATE_COMMIT_INTERVL": "2s"},
			errs: []string{"commit_intervl: unknown key (from FLOWSTATE_COMMIT_INTERVL)"},
		},
		{
			name: "env bad value",
			yaml: base,
			env:  map[string]string{"FLOWSTATE_ROCKSDB__BLOCK_CACHE_MB": "lots"},
			errs: []string{`rocksdb.block_cache_mb: "lots" is not an integer (from FLOWSTATE_ROCKSDB__BLOCK_CACHE_MB)`},
		},
		{
			name: "env unknown key",
			yaml: base,
			env:  map[string]string{"FLOWSTATE_COMMIT_INTERVALL": "1s"},
			errs: []string{`commit_intervall: unknown key (from FLOWSTATE_COMMIT_INTERVALL)`},
		},
		{
			name: "env only",
			env: map[string]string{
				"FLOWSTATE_APPLICATION_ID":               "e",
				"FLOWSTATE_BROKERS":                      "b:1",
				"FLOWSTATE_PIPELINES__WORDCOUNT__MODULE": module,
				"FLOWSTATE_PIPELINES__WORDCOUNT__INPUTS": "in",
			},
			want: func(t *testing.T, c *Config) {
				check(t, "application_id", c.Engine.ApplicationID, "e")
			},
		},
		{
			name: "env int64 and other integer kinds",
			yaml: base,
			env: map[string]string{
				"FLOWSTATE_ACCEPTABLE_RECOVERY_LAG":                 "5000",
				"FLOWSTATE_MAX_WARMUP_REPLICAS":                     "3",
				"FLOWSTATE_NUM_STANDBY_REPLICAS":                    " 1 ",
				"FLOWSTATE_PIPELINES__WORDCOUNT__MAX_BATCH_RECORDS": "10",
			},
			want: func(t *testing.T, c *Config) {
				check(t, "acceptable_recovery_lag", *c.Engine.AcceptableRecoveryLag, int64(5000))
				check(t, "max_warmup_replicas", *c.Engine.MaxWarmupReplicas, 3)
				check(t, "num_standby_replicas", c.Engine.NumStandbyReplicas, 1)
				check(t, "max_batch_records", c.Engine.Pipelines[0].MaxBatchRecords, 10)
			},
		},
		{
			name: "defaults of the pointer fields",
			yaml: base,
			want: func(t *testing.T, c *Config) {
				check(t, "acceptable_recovery_lag", *c.Engine.AcceptableRecoveryLag, int64(engine.DefaultAcceptableRecoveryLag))
				check(t, "max_warmup_replicas", *c.Engine.MaxWarmupReplicas, engine.DefaultMaxWarmupReplicas)
			},
		},
		{
			name: "explicit 0 is honoured where it means something",
			yaml: base + "acceptable_recovery_lag: 0\nmax_warmup_replicas: 0\nnum_standby_replicas: 0\ndev: {port: 0}\n",
			want: func(t *testing.T, c *Config) {
				check(t, "acceptable_recovery_lag", *c.Engine.AcceptableRecoveryLag, int64(0))
				check(t, "max_warmup_replicas", *c.Engine.MaxWarmupReplicas, 0)
				check(t, "num_standby_replicas", c.Engine.NumStandbyReplicas, 0)
				check(t, "dev.port", c.Dev.Port, 0)
			},
		},
		{
			name: "explicit 0 from the environment",
			yaml: base + "acceptable_recovery_lag: 500\n",
			env:  map[string]string{"FLOWSTATE_ACCEPTABLE_RECOVERY_LAG": "0", "FLOWSTATE_MAX_WARMUP_REPLICAS": "0"},
			want: func(t *testing.T, c *Config) {
				check(t, "acceptable_recovery_lag", *c.Engine.AcceptableRecoveryLag, int64(0))
				check(t, "max_warmup_replicas", *c.Engine.MaxWarmupReplicas, 0)
			},
		},
		{
			name: "negative max_warmup_replicas is off",
			yaml: base + "max_warmup_replicas: -1\n",
			want: func(t *testing.T, c *Config) {
				check(t, "max_warmup_replicas", *c.Engine.MaxWarmupReplicas, -1)
			},
		},
		{
			name: "explicit 0 where it means nothing",
			yaml: base + "    max_batch_records: 0\n    limits: {memory_mb: 0}\n" +
				"commit_interval: 0s\nrocksdb: {block_cache_mb: 0}\nrestore: {max_parallel: 0}\ndev: {partitions: 0}\n",
			env: map[string]string{"FLOWSTATE_STATE_CLEANUP_DELAY": "0s"},
			errs: []string{
				"commit_interval: 0s is not allowed: leave the key out for the default, 1s",
				"dev.partitions: 0 is not allowed: leave the key out for the default, 4",
				"pipelines.wordcount.limits.memory_mb: 0 is not allowed: leave the key out for the default, 128",
				"pipelines.wordcount.max_batch_records: 0 is not allowed: leave the key out for the default, 1000",
				"restore.max_parallel: 0 is not allowed: leave the key out for the default, 2",
				"rocksdb.block_cache_mb: 0 is not allowed: leave the key out for the default, 64",
				"state_cleanup_delay: 0s is not allowed: leave the key out for the default, 10m0s (from FLOWSTATE_STATE_CLEANUP_DELAY)",
			},
		},
		{
			name: "full keys from the packages' Validate",
			yaml: base + "    limits: {memory_mb: 5000, max_open_iterators: -1}\n    on_error: ignore\n" +
				"rocksdb: {max_open_files: -2, compression: gzip}\nrestore: {on_truncated: ignore}\n",
			errs: []string{
				"pipelines.wordcount.limits.memory_mb: 5000 is not in [1, 4096]",
				"pipelines.wordcount.limits.max_open_iterators: -1 is not positive",
				`pipelines.wordcount.on_error: "ignore" is not fail, skip or dead_letter`,
				"rocksdb.max_open_files: -2 is not -1 (no limit) or positive",
				`rocksdb.compression: "gzip" is not one of [lz4 none snappy zstd]`,
				`restore.on_truncated: "ignore" is not rebuild or fail`,
			},
			notErrs: []string{"invalid config", "invalid limits"},
		},
		{
			name:    "a key that failed to decode is not also missing",
			yaml:    strings.Replace(base, "application_id: wordcount", "application_id: [a, b]", 1) + "    limits: [1]\n",
			errs:    []string{"application_id: want a string, got a list", "pipelines.wordcount.limits: want a map, got a list"},
			notErrs: []string{"application_id: required"},
		},
		{
			name:    "pipelines that failed to decode are not also missing",
			yaml:    "application_id: a\nbrokers: [b:1]\npipelines: [x]\n",
			errs:    []string{"pipelines: want a map, got a list"},
			notErrs: []string{"at least one pipeline required"},
		},
		{
			name: "integer kinds in messages",
			yaml: base + "max_warmup_replicas: [1]\nacceptable_recovery_lag: 1.5\n",
			env:  map[string]string{"FLOWSTATE_PIPELINES__WORDCOUNT__MAX_BATCH_RECORDS": "99999999999999999999"},
			errs: []string{
				"max_warmup_replicas: want an integer, got a list",
				"acceptable_recovery_lag: 1.5 is not an integer",
				`pipelines.wordcount.max_batch_records: "99999999999999999999" is out of range for int (from FLOWSTATE_PIPELINES__WORDCOUNT__MAX_BATCH_RECORDS)`,
			},
		},
		{
			name: "env var named on validation errors",
			yaml: base,
			env:  map[string]string{"FLOWSTATE_PROCESSING_GUARANTEE": "twice"},
			errs: []string{`processing_guarantee: "twice" is not at_least_once or exactly_once (from FLOWSTATE_PROCESSING_GUARANTEE)`},
		},
		{
			name:    "a flag overrides the environment",
			yaml:    base,
			env:     map[string]string{"FLOWSTATE_LOG_LEVEL": "loud"},
			flags:   []string{"--log-level", "chatty"},
			errs:    []string{`log_level: "chatty" is not debug, info, warn or error`},
			notErrs: []string{"FLOWSTATE_LOG_LEVEL", "loud"},
		},
		{
			name:  "flag override",
			yaml:  base + "state_dir: from-file\n",
			env:   map[string]string{"FLOWSTATE_STATE_DIR": "from-env"},
			flags: []string{"--state-dir", "from-flag", "--other", "x"},
			want: func(t *testing.T, c *Config) {
				check(t, "state_dir", c.Engine.StateDir, "from-flag")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var path string
			if tt.yaml != "" {
				path = writeFile(t, t.TempDir(), "flowstate.yaml", tt.yaml)
			}
			fs, keys := testFlags()
			if err := fs.Parse(tt.flags); err != nil {
				t.Fatal(err)
			}
			c, err := Load(Source{Path: path, Flags: fs, FlagKeys: keys, Dev: tt.dev})
			if len(tt.errs) == 0 {
				if err != nil {
					t.Fatalf("loadConfig: %v", err)
				}
				tt.want(t, c)
				return
			}
			if err == nil {
				t.Fatalf("loadConfig succeeded, want errors %q", tt.errs)
			}
			lines := strings.Split(err.Error(), "\n")
			for _, want := range tt.errs {
				found := false
				for _, l := range lines {
					if strings.Contains(l, want) {
						found = true
					}
				}
				if !found {
					t.Errorf("error does not have a line with %q:\n%v", want, err)
				}
			}
			for _, not := range tt.notErrs {
				if strings.Contains(err.Error(), not) {
					t.Errorf("error has %q:\n%v", not, err)
				}
			}
		})
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	clearEnv(t)
	_, err := Load(Source{Path: filepath.Join(t.TempDir(), "nope.yaml")})
	if err == nil || !strings.Contains(err.Error(), "no such file or directory") {
		t.Fatalf("err = %v, want no such file", err)
	}
}

func check[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// TestLoadErrorOutput checks the whole error: one line per key, sorted by
// key, none twice, an unknown key from the environment named by its
// variable.
func TestLoadErrorOutput(t *testing.T) {
	clearEnv(t)
	t.Setenv("FLOWSTATE_COLOUR", "red")
	path := writeFile(t, t.TempDir(), "app.yaml", `
brokers: [b:1]
commit_interval: soon
rocksdb: {block_cache_mb: -1, compaction: tiered}
pipelines:
  p:
    inputs: [in]
    limits: {memory_mb: 0}
`)
	_, err := Load(Source{Path: path})
	want := "config " + path + ":\n" +
		"application_id: required\n" +
		"colour: unknown key (from FLOWSTATE_COLOUR)\n" +
		`commit_interval: "soon" is not a duration such as 500ms, 5s or 1m` + "\n" +
		"pipelines.p.limits.memory_mb: 0 is not allowed: leave the key out for the default, 128\n" +
		"pipelines.p.module: required (path of a .wasm file)\n" +
		"rocksdb.block_cache_mb: -1 is not positive\n" +
		`rocksdb.compaction: "tiered" is not one of [level universal]`
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n%v\nwant:\n%s", err, want)
	}
	list, ok := errors.AsType[field.List](err)
	if !ok || len(list) != 7 || list[0].Key != "application_id" {
		t.Fatalf("errors.As(field.List) = %v, %v", list, ok)
	}
}
