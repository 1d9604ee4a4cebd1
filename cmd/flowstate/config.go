package main

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"

	"github.com/flowstate/flowstate/engine"
	"github.com/flowstate/flowstate/host"
	"github.com/flowstate/flowstate/restore"
	"github.com/flowstate/flowstate/state"
)

// envPrefix starts every environment variable that sets a config key.
const envPrefix = "FLOWSTATE_"

// fileConfig is the configuration as written: the YAML file, overridden by
// FLOWSTATE_ environment variables, overridden by flags. Every key is a
// field here; any other key is an error. It is turned into engine.Config by
// engineConfig.
type fileConfig struct {
	// ApplicationID names the consumer group and prefixes changelog topics.
	// Required. Kafka Streams: application.id.
	ApplicationID string `koanf:"application_id"`
	// Brokers are the seed brokers, host:port; `flowstate dev` replaces them
	// with its embedded broker. Kafka Streams: bootstrap.servers.
	Brokers []string `koanf:"brokers"`
	// StateDir holds the task stores, the module cache and, under `flowstate
	// dev`, the embedded broker's data (<state_dir>/broker). Default ".state".
	// Kafka Streams: state.dir.
	StateDir string `koanf:"state_dir"`
	// CommitInterval is the period of task commits, a duration such as "1s".
	// Default 1s. Kafka Streams: commit.interval.ms.
	CommitInterval time.Duration `koanf:"commit_interval"`
	// ProcessingGuarantee is at_least_once (default) or exactly_once. Kafka
	// Streams: processing.guarantee.
	ProcessingGuarantee string `koanf:"processing_guarantee"`
	// LogLevel is debug, info (default), warn or error.
	LogLevel string `koanf:"log_level"`
	// InstanceID makes this process a static group member: restarted within
	// session_timeout, it gets its partitions back without a rebalance.
	// Default "" (dynamic membership). Kafka Streams: group.instance.id.
	InstanceID string `koanf:"instance_id"`
	// SessionTimeout is how long the group waits for a silent member before
	// moving its partitions. Default 45s. Kafka Streams: session.timeout.ms.
	SessionTimeout time.Duration `koanf:"session_timeout"`
	// NumStandbyReplicas is how many other processes keep a standby copy
	// of each task's stores, tailing its changelogs, so that a failover
	// restores almost nothing. Default 0. Kafka Streams:
	// num.standby.replicas.
	NumStandbyReplicas int `koanf:"num_standby_replicas"`
	// Rack names this process's rack or zone; standbys go to other racks
	// than their task's active when they can. Default "". Kafka Streams:
	// client.rack, rack.aware.assignment.tags.
	Rack string `koanf:"rack"`
	// MaxWarmupReplicas bounds the tasks kept on a caught-up process while
	// a warm-up copy fills where they are to move; negative is off.
	// Default 2. Kafka Streams: max.warmup.replicas.
	MaxWarmupReplicas int `koanf:"max_warmup_replicas"`
	// AcceptableRecoveryLag is the changelog offsets a copy may lag and
	// count as caught up. Default 10000. Kafka Streams:
	// acceptable.recovery.lag.
	AcceptableRecoveryLag int64 `koanf:"acceptable_recovery_lag"`
	// ProbingRebalanceInterval is how often the leader rebalances while
	// warm-ups are under way. Default 10m. Kafka Streams:
	// probing.rebalance.interval.ms.
	ProbingRebalanceInterval time.Duration `koanf:"probing_rebalance_interval"`
	// StateCleanupDelay is how long the directory of a task that left the
	// process is kept before it is deleted, so that a task that comes back
	// restores only the delta. Default 10m. Kafka Streams:
	// state.cleanup.delay.ms.
	StateCleanupDelay time.Duration `koanf:"state_cleanup_delay"`
	// HTTPAddr, host:port, serves /metrics (Prometheus text) and /status
	// (JSON, read by `flowstate status`). Default "" (no server).
	HTTPAddr string `koanf:"http_addr"`
	// RocksDB is the memory budget shared by every store of the process.
	RocksDB rocksDBConfig `koanf:"rocksdb"`
	// Restore configures restoring stores from their changelogs.
	Restore restoreConfig `koanf:"restore"`
	// Pipelines maps a pipeline name to its pipeline. A map, not a list, so
	// that FLOWSTATE_PIPELINES__<NAME>__<KEY> can address one pipeline;
	// environment variables are lower-cased, so they reach only pipelines
	// with lower-case names, and a name must not contain a dot.
	Pipelines map[string]pipelineConfig `koanf:"pipelines"`
	// Dev configures `flowstate dev` only.
	Dev devConfig `koanf:"dev"`
}

// rocksDBConfig is the YAML form of state.BudgetConfig.
type rocksDBConfig struct {
	// BlockCacheMB is the shared block cache, in MiB. Default 64.
	BlockCacheMB int `koanf:"block_cache_mb"`
	// WriteBufferMB caps all memtables together, in MiB. Default 64.
	WriteBufferMB int `koanf:"write_buffer_mb"`
	// MaxOpenFiles limits the open SST files of each database; -1 is no
	// limit. Default -1.
	MaxOpenFiles int `koanf:"max_open_files"`
	// MaxBackgroundJobs bounds each database's concurrent flushes and
	// compactions. Default 2.
	MaxBackgroundJobs int `koanf:"max_background_jobs"`
	// Compaction (level, universal) and Compression (snappy, lz4, zstd,
	// none) are every store's defaults; empty keeps RocksDB's (level,
	// snappy).
	Compaction  string `koanf:"compaction"`
	Compression string `koanf:"compression"`
	// Stores overrides compaction and compression for single stores, by
	// store name.
	Stores map[string]storeTuning `koanf:"stores"`
}

// storeTuning is the YAML form of state.StoreOptions.
type storeTuning struct {
	Compaction  string `koanf:"compaction"`
	Compression string `koanf:"compression"`
}

// restoreConfig is the YAML form of engine.RestoreConfig; zero fields take
// its defaults.
type restoreConfig struct {
	// FetchMaxBytes bounds one fetch of a restore client, in bytes.
	// Default 64 MiB. Kafka Streams: restore.consumer.fetch.max.bytes.
	FetchMaxBytes int `koanf:"fetch_max_bytes"`
	// FetchMaxPartitionBytes bounds one partition's share of a fetch.
	// Default 4 MiB. Kafka Streams: max.partition.fetch.bytes.
	FetchMaxPartitionBytes int `koanf:"fetch_max_partition_bytes"`
	// SSTChunkBytes is the size of the sorted chunks a store rebuilt from
	// nothing is built from, as SST files. Default 64 MiB; -1 is off.
	SSTChunkBytes int `koanf:"sst_chunk_bytes"`
	// MaxParallel is how many tasks replay changelogs at once, active
	// tasks before standbys' catch-ups. Default 2.
	MaxParallel int `koanf:"max_parallel"`
	// OnTruncated is rebuild (default) or fail: what a restore does when
	// records after a store's offset were deleted from its changelog.
	OnTruncated string `koanf:"on_truncated"`
	// ProgressInterval is the period of "restore progress" log lines.
	// Default 5s; a negative value turns them off.
	ProgressInterval time.Duration `koanf:"progress_interval"`
}

// pipelineConfig is the YAML form of engine.Pipeline; its name is its key
// under pipelines.
type pipelineConfig struct {
	// Module is the path of the .wasm file, relative to the current
	// directory (not to the config file). Required.
	Module string `koanf:"module"`
	// Inputs are the topics the pipeline consumes. At least one.
	Inputs []string `koanf:"inputs"`
	// Outputs are the topics the module may emit to.
	Outputs []string `koanf:"outputs"`
	// Stores are the module's key-value stores, each changelogged to
	// <application_id>-<store>-changelog.
	Stores []string `koanf:"stores"`
	// MaxBatchRecords bounds the records of one guest call. Default 1000.
	MaxBatchRecords int `koanf:"max_batch_records"`
	// Limits are the module's sandbox limits.
	Limits limitsConfig `koanf:"limits"`
	// OnError is fail (default: the task stops), skip (the failing record
	// is skipped) or dead_letter (it is written to
	// <application_id>-<pipeline>-dlq). Kafka Streams:
	// processing.exception.handler.
	OnError string `koanf:"on_error"`
}

// limitsConfig is the YAML form of host.Limits; zero fields take the
// defaults of host.Limits.EnsureDefaults.
type limitsConfig struct {
	MemoryMB         int           `koanf:"memory_mb"`          // MiB, default 128
	CallTimeout      time.Duration `koanf:"call_timeout"`       // per guest call, default 5s
	MaxOutputRecords int           `koanf:"max_output_records"` // per batch, default 100000
	MaxOutputBytes   int           `koanf:"max_output_bytes"`   // per batch, default 64 MiB
	MaxKeyBytes      int           `koanf:"max_key_bytes"`      // default 64 KiB
	MaxValueBytes    int           `koanf:"max_value_bytes"`    // default 1 MiB
	MaxOpenIterators int           `koanf:"max_open_iterators"` // default 16
}

// devConfig configures `flowstate dev`.
type devConfig struct {
	// Partitions is the partition count of the topics dev creates. Default 4.
	Partitions int `koanf:"partitions"`
	// Port is the embedded broker's port on 127.0.0.1; 0 (default) picks a
	// free one.
	Port int `koanf:"port"`
}

// config is a loaded, defaulted and validated configuration.
type config struct {
	Engine   engine.Config // Logger unset
	LogLevel slog.Level
	HTTPAddr string
	Dev      devConfig
}

// flagKeys maps the flags that set config keys to their keys. Other flags of
// a FlagSet given to loadConfig are not config keys.
var flagKeys = map[string]string{
	"brokers":    "brokers",
	"state-dir":  "state_dir",
	"log-level":  "log_level",
	"http-addr":  "http_addr",
	"port":       "dev.port",
	"partitions": "dev.partitions",
}

// addConfigFlags adds the flags shared by the commands that read a config.
func addConfigFlags(fs *pflag.FlagSet) *string {
	path := fs.StringP("config", "c", "", "YAML config `file`")
	fs.StringSlice("brokers", nil, "seed brokers, host:port (key brokers)")
	fs.String("state-dir", "", "state directory (key state_dir)")
	fs.String("log-level", "", "debug, info, warn or error (key log_level)")
	fs.String("http-addr", "", "serve /metrics and /status on `host:port` (key http_addr)")
	return path
}

// loadConfig reads the YAML file at path (none if path is empty), then the
// FLOWSTATE_ environment variables, then the flags of fs that were set, each
// overriding the one before. The result is defaulted and validated; the
// error lists every bad or unknown key, one per line, sorted. With dev set,
// brokers is not required: `flowstate dev` brings its own.
func loadConfig(path string, fs *pflag.FlagSet, dev bool) (*config, error) {
	ko := koanf.New(".")
	if path != "" {
		if err := ko.Load(file.Provider(path), yaml.Parser()); err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	// FLOWSTATE_ROCKSDB__BLOCK_CACHE_MB -> rocksdb.block_cache_mb. envKeys
	// remembers each key's variable for error messages.
	envKeys := map[string]string{}
	err := ko.Load(env.Provider(envPrefix, ".", func(name string) string {
		key := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, envPrefix), "__", "."))
		envKeys[key] = name
		return key
	}), nil)
	if err != nil {
		return nil, fmt.Errorf("config from environment: %w", err)
	}
	if fs != nil {
		// A nil koanf makes posflag skip every flag that was not set, so a
		// flag's default never overrides the file.
		err := ko.Load(posflag.ProviderWithFlag(fs, ".", nil, func(f *pflag.Flag) (string, any) {
			key, ok := flagKeys[f.Name]
			if !ok {
				return "", nil
			}
			return key, posflag.FlagVal(fs, f)
		}), nil)
		if err != nil {
			return nil, fmt.Errorf("config from flags: %w", err)
		}
	}

	var fc fileConfig
	var errs []error
	if err := unmarshal(ko, "", &fc); err != nil {
		errs = append(errs, decodeErrors(err, envKeys)...)
		// A pipeline with a bad key is left out of the map; decode what it
		// has, so that the rest of it is checked too rather than reported
		// missing. Its errors are those above.
		for _, name := range ko.MapKeys("pipelines") {
			if fc.Pipelines == nil {
				fc.Pipelines = map[string]pipelineConfig{}
			}
			if _, ok := fc.Pipelines[name]; !ok {
				var p pipelineConfig
				_ = unmarshal(ko, "pipelines."+name, &p)
				fc.Pipelines[name] = p
			}
		}
	}
	// A key that could not be decoded is reported once, not also as
	// missing or invalid.
	bad := map[string]bool{}
	for _, err := range errs {
		key, _, _ := strings.Cut(err.Error(), ":")
		bad[key] = true
	}
	cfg, verrs := fc.validate(dev)
	for _, err := range verrs {
		if key, _, _ := strings.Cut(err.Error(), ":"); !bad[key] {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		errs = slices.CompactFunc(errs, func(a, b error) bool { return a.Error() == b.Error() })
		if path != "" {
			return nil, fmt.Errorf("config %s:\n%w", path, errors.Join(errs...))
		}
		return nil, fmt.Errorf("config:\n%w", errors.Join(errs...))
	}
	return cfg, nil
}

// unmarshal decodes the subtree of ko at path into out, strictly: unknown
// keys are errors, durations need a unit, strings are parsed where
// integers or lists are wanted (as environment variables give them).
func unmarshal(ko *koanf.Koanf, path string, out any) error {
	return ko.UnmarshalWithConf(path, out, koanf.UnmarshalConf{DecoderConfig: &mapstructure.DecoderConfig{
		ErrorUnused: true,
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			durationHook,
			listHook,
			intHook,
		),
	}})
}

// validate converts fc, applies the defaults and returns every problem.
// With dev set, the brokers are the embedded broker's.
func (fc *fileConfig) validate(dev bool) (*config, []error) {
	var errs []error
	cfg := &config{Engine: fc.engineConfig(), Dev: fc.Dev, HTTPAddr: fc.HTTPAddr}
	cfg.Engine.EnsureDefaults()
	if dev {
		// Replaced by the embedded broker's address once it listens.
		cfg.Engine.Brokers = []string{"127.0.0.1:0"}
	}
	if cfg.Dev.Partitions == 0 {
		cfg.Dev.Partitions = 4
	}
	if err := cfg.Engine.Validate(); err != nil {
		errs = append(errs, flatten(err)...)
	}
	level, err := parseLevel(fc.LogLevel)
	if err != nil {
		errs = append(errs, err)
	}
	cfg.LogLevel = level
	if cfg.Dev.Partitions < 0 {
		errs = append(errs, fmt.Errorf("dev.partitions: %d is negative", cfg.Dev.Partitions))
	}
	if cfg.HTTPAddr != "" {
		if _, port, err := net.SplitHostPort(cfg.HTTPAddr); err != nil {
			errs = append(errs, fmt.Errorf("http_addr: %q is not host:port", cfg.HTTPAddr))
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			errs = append(errs, fmt.Errorf("http_addr: %q has no valid port", cfg.HTTPAddr))
		}
	}
	if cfg.Dev.Port < 0 || cfg.Dev.Port > 65535 {
		errs = append(errs, fmt.Errorf("dev.port: %d is not a port (0 picks a free one)", cfg.Dev.Port))
	}
	declared := map[string]bool{}
	for _, p := range cfg.Engine.Pipelines {
		for _, st := range p.Stores {
			declared[st] = true
		}
	}
	for name := range fc.RocksDB.Stores {
		if !declared[name] {
			errs = append(errs, fmt.Errorf("rocksdb.stores.%s: no pipeline declares store %q", name, name))
		}
	}
	for _, p := range cfg.Engine.Pipelines {
		if p.Module == "" {
			continue // reported by Validate
		}
		if err := checkReadable(p.Module); err != nil {
			errs = append(errs, fmt.Errorf("pipelines.%s.module: %w", p.Name, err))
		}
	}
	return cfg, errs
}

// engineConfig returns the engine.Config that fc describes, pipelines sorted
// by name.
func (fc *fileConfig) engineConfig() engine.Config {
	c := engine.Config{
		ApplicationID:            fc.ApplicationID,
		Brokers:                  fc.Brokers,
		StateDir:                 fc.StateDir,
		CommitInterval:           fc.CommitInterval,
		Guarantee:                engine.Guarantee(fc.ProcessingGuarantee),
		InstanceID:               fc.InstanceID,
		SessionTimeout:           fc.SessionTimeout,
		NumStandbyReplicas:       fc.NumStandbyReplicas,
		Rack:                     fc.Rack,
		MaxWarmupReplicas:        fc.MaxWarmupReplicas,
		AcceptableRecoveryLag:    fc.AcceptableRecoveryLag,
		ProbingRebalanceInterval: fc.ProbingRebalanceInterval,
		RocksDB: state.BudgetConfig{
			BlockCacheMB:      fc.RocksDB.BlockCacheMB,
			WriteBufferMB:     fc.RocksDB.WriteBufferMB,
			MaxOpenFiles:      fc.RocksDB.MaxOpenFiles,
			MaxBackgroundJobs: fc.RocksDB.MaxBackgroundJobs,
			Compaction:        fc.RocksDB.Compaction,
			Compression:       fc.RocksDB.Compression,
			Stores:            fc.RocksDB.storeOptions(),
		},
		Restore: engine.RestoreConfig{
			FetchMaxBytes:          fc.Restore.FetchMaxBytes,
			FetchMaxPartitionBytes: fc.Restore.FetchMaxPartitionBytes,
			SSTChunkBytes:          fc.Restore.SSTChunkBytes,
			MaxParallel:            fc.Restore.MaxParallel,
			OnTruncated:            restore.TruncatedPolicy(fc.Restore.OnTruncated),
			ProgressInterval:       fc.Restore.ProgressInterval,
		},
		StateCleanupDelay: fc.StateCleanupDelay,
	}
	names := make([]string, 0, len(fc.Pipelines))
	for name := range fc.Pipelines {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		p := fc.Pipelines[name]
		c.Pipelines = append(c.Pipelines, engine.Pipeline{
			Name:            name,
			Module:          p.Module,
			Inputs:          p.Inputs,
			Outputs:         p.Outputs,
			Stores:          p.Stores,
			MaxBatchRecords: p.MaxBatchRecords,
			OnError:         engine.OnError(p.OnError),
			Limits: host.Limits{
				MemoryMB:         p.Limits.MemoryMB,
				CallTimeout:      p.Limits.CallTimeout,
				MaxOutputRecords: p.Limits.MaxOutputRecords,
				MaxOutputBytes:   p.Limits.MaxOutputBytes,
				MaxKeyBytes:      p.Limits.MaxKeyBytes,
				MaxValueBytes:    p.Limits.MaxValueBytes,
				MaxOpenIterators: p.Limits.MaxOpenIterators,
			},
		})
	}
	return c
}

func (c rocksDBConfig) storeOptions() map[string]state.StoreOptions {
	if len(c.Stores) == 0 {
		return nil
	}
	m := make(map[string]state.StoreOptions, len(c.Stores))
	for name, st := range c.Stores {
		m[name] = state.StoreOptions{Compaction: st.Compaction, Compression: st.Compression}
	}
	return m
}

// checkReadable reports whether path is a file this process can read.
func checkReadable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.IsDir() {
		return fmt.Errorf("%s is a directory, not a .wasm file", path)
	}
	return nil
}

// parseLevel parses a log_level; empty is info.
func parseLevel(s string) (slog.Level, error) {
	switch s {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return slog.LevelInfo, fmt.Errorf("log_level: %q is not debug, info, warn or error", s)
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	// indexRe matches mapstructure's map index in a field name:
	// pipelines[wordcount].module.
	indexRe = regexp.MustCompile(`\[([^\]]*)\]`)
)

// durationHook parses durations from strings ("1s", "500ms") and refuses
// bare numbers, which would otherwise silently be nanoseconds.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != durationType || from == durationType {
		return data, nil
	}
	if k := kind(from); k == "integer" || k == "number" {
		return nil, fmt.Errorf("%v has no unit: want a duration such as 500ms, 5s or 1m", data)
	} else if k != "string" {
		return nil, fmt.Errorf("want a duration such as 500ms, 5s or 1m, got a %s", k)
	}
	d, err := time.ParseDuration(strings.TrimSpace(data.(string)))
	if err != nil {
		return nil, fmt.Errorf("%q is not a duration such as 500ms, 5s or 1m", data)
	}
	return d, nil
}

// listHook splits a string on commas where a list is wanted, so that
// FLOWSTATE_BROKERS=a:9092,b:9092 and `inputs: sentences` work.
func listHook(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.String || to.Kind() != reflect.Slice || to.Elem().Kind() != reflect.String {
		return data, nil
	}
	var out []string
	for s := range strings.SplitSeq(data.(string), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

// intHook parses integers from strings, as environment variables and flags
// give them, and refuses fractions, which would otherwise be truncated.
func intHook(from, to reflect.Type, data any) (any, error) {
	if to.Kind() != reflect.Int {
		return data, nil
	}
	if from.Kind() == reflect.Float64 || from.Kind() == reflect.Float32 {
		f := reflect.ValueOf(data).Float()
		if f != math.Trunc(f) {
			return nil, fmt.Errorf("%v is not an integer", data)
		}
		return int(f), nil
	}
	if from.Kind() != reflect.String {
		return data, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(data.(string)))
	if err != nil {
		return nil, fmt.Errorf("%q is not an integer", data)
	}
	return n, nil
}

// decodeErrors turns mapstructure's error tree into one error per key, named
// as in the YAML (pipelines.wordcount.module, not pipelines[wordcount].module),
// with the environment variable that set the key when there is one.
func decodeErrors(err error, envKeys map[string]string) []error {
	var out []error
	add := func(key, msg string) {
		if v, ok := envKeys[key]; ok {
			msg += " (from " + v + ")"
		}
		out = append(out, fmt.Errorf("%s: %s", key, msg))
	}
	var walk func(error)
	walk = func(err error) {
		de, isDecode := err.(*mapstructure.DecodeError)
		switch {
		case isDecode:
			name := indexRe.ReplaceAllString(de.Name(), ".$1")
			msg := de.Unwrap().Error()
			if ute, ok := errors.AsType[*mapstructure.UnconvertibleTypeError](de); ok {
				msg = fmt.Sprintf("want a %s, got a %s", kind(ute.Expected.Type()), kind(reflect.TypeOf(ute.Value)))
				if name == "pipelines" {
					msg += " (pipelines are keyed by name: {wordcount: {module: ..., inputs: [...]}})"
				}
			}
			if keys, ok := strings.CutPrefix(msg, "has invalid keys: "); ok {
				for k := range strings.SplitSeq(keys, ", ") {
					if name != "" {
						k = name + "." + k
					}
					add(k, "unknown key")
				}
				return
			}
			add(name, msg)
		case isJoin(err):
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				walk(e)
			}
		default:
			if u := errors.Unwrap(err); u != nil {
				walk(u) // koanf's and mapstructure's wrapping
				return
			}
			out = append(out, err)
		}
	}
	walk(err)
	return out
}

// kind names the YAML kind of a Go type, for error messages.
func kind(t reflect.Type) string {
	if t == nil {
		return "null"
	}
	if t == durationType {
		return "duration"
	}
	switch t.Kind() {
	case reflect.Map, reflect.Struct:
		return "map"
	case reflect.Slice, reflect.Array:
		return "list"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	}
	return t.String()
}

func isJoin(err error) bool {
	_, ok := err.(interface{ Unwrap() []error })
	return ok
}

// flatten returns the errors joined in err, recursively.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
