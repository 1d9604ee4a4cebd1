package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/flowstate/flowstate/cmd/flowstate/internal/bench"
	"github.com/flowstate/flowstate/cmd/flowstate/internal/config"
	"github.com/flowstate/flowstate/engine"
)

// benchCommands are the subcommands of `flowstate bench`.
var benchCommands = map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) error{
	"process": runBenchProcess,
	"restore": runBenchRestore,
	"stores":  runBenchStores,
}

const benchUsage = `Usage: flowstate bench <benchmark> [flags]

Benchmarks:
  process   records/s through a count-by-key processor, per guarantee
  restore   records/s restoring fresh stores from a changelog (--restart: and a restarted one)
  stores    the process RSS with --stores task databases under one memory budget

Run flowstate bench <benchmark> --help for its flags.
`

// runBench runs one benchmark of `flowstate bench`.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, benchUsage)
		return nil
	}
	run, ok := benchCommands[args[0]]
	if !ok {
		names := make([]string, 0, len(benchCommands))
		for n := range benchCommands {
			names = append(names, n)
		}
		slices.Sort(names)
		return usageError{fmt.Errorf("unknown benchmark %q (one of: %s)", args[0], strings.Join(names, ", "))}
	}
	return run(ctx, args[1:], stdout, stderr)
}

func newBenchFlags() *pflag.FlagSet {
	fs, _ := newBenchProcessFlags()
	return fs
}

// benchProcessFlags are the flags of `flowstate bench process`.
type benchProcessFlags struct {
	guarantees     string
	records, keys  int
	partitions     int
	brokers        string
	module         string
	commitInterval time.Duration
	json           bool
	cpuProfile     string
	metrics        string
	rounds         int
}

func newBenchProcessFlags() (*pflag.FlagSet, *benchProcessFlags) {
	f := &benchProcessFlags{}
	fs := pflag.NewFlagSet("bench process", pflag.ContinueOnError)
	fs.StringVar(&f.guarantees, "guarantee", "at_least_once,exactly_once", "processing `guarantees` to measure, comma-separated")
	fs.IntVar(&f.records, "records", 1_000_000, "input records")
	fs.IntVar(&f.keys, "keys", 100_000, "distinct keys")
	fs.IntVar(&f.partitions, "partitions", 8, "input partitions")
	fs.StringVar(&f.brokers, "brokers", "", "`host:port` of a broker to use instead of an embedded one")
	fs.StringVar(&f.module, "module", "bin/plugins/counter.wasm", "count-by-key `module` (plugins/counter)")
	fs.DurationVar(&f.commitInterval, "commit-interval", 0, "commit interval (0: the default of each guarantee)")
	fs.BoolVar(&f.json, "json", false, "print one JSON object instead of a table")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the measured part to `file` (a guarantee's name is inserted before the extension)")
	fs.StringVar(&f.metrics, "metrics", "off,on", "run with the metrics exporter `off`, on (scraped every second), or both, comma-separated; both print their ratio")
	fs.IntVar(&f.rounds, "rounds", 1, "`times` to run each guarantee and metrics mode, alternating their order")
	return fs, f
}

// runBenchProcess is `flowstate bench process`: bench.Process for each
// guarantee in one run, each on a fresh embedded broker unless --brokers
// names one.
func runBenchProcess(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, f := newBenchProcessFlags()
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if _, err := os.Stat(f.module); err != nil {
		return fmt.Errorf("--module: %w (run make plugins)", err)
	}
	var modes []bool
	for m := range strings.SplitSeq(f.metrics, ",") {
		switch strings.TrimSpace(m) {
		case "off":
			modes = append(modes, false)
		case "on":
			modes = append(modes, true)
		default:
			return usageError{fmt.Errorf("--metrics: %q is not on or off", m)}
		}
	}
	if f.rounds < 1 {
		return usageError{fmt.Errorf("--rounds: %d is less than 1", f.rounds)}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var results []bench.ProcessResult
	for round := range f.rounds {
		for _, g := range strings.Split(f.guarantees, ",") {
			// Every other round the other mode goes first, so that a
			// trend of the machine's load weighs on both alike.
			order := slices.Clone(modes)
			if round%2 == 1 {
				slices.Reverse(order)
			}
			for _, metrics := range order {
				r, err := benchProcessOnce(ctx, f, engine.Guarantee(strings.TrimSpace(g)), metrics, log)
				if err != nil {
					return fmt.Errorf("%s: %w", g, err)
				}
				results = append(results, r)
			}
		}
	}
	return bench.WriteProcess(stdout, results, f.json)
}

func benchProcessOnce(ctx context.Context, f *benchProcessFlags, g engine.Guarantee, metrics bool, log *slog.Logger) (bench.ProcessResult, error) {
	brokers := f.brokers
	if brokers == "" {
		c, addr, err := startBroker(brokerConfig{Partitions: f.partitions, Logger: log})
		if err != nil {
			return bench.ProcessResult{}, err
		}
		defer c.Close()
		brokers = addr
	}
	return bench.Process(ctx, bench.ProcessConfig{
		Guarantee: g, Records: f.records, Keys: f.keys, Partitions: f.partitions, Brokers: brokers, Module: f.module,
		CommitInterval: f.commitInterval, CPUProfile: f.cpuProfile, Logger: log, Metrics: metrics,
	})
}

// benchRestoreFlags are the flags of `flowstate bench restore`.
type benchRestoreFlags struct {
	keys, valueBytes int
	partitions       int
	parallel         int
	brokers          string
	restart          bool
	delta            int
	fetchMaxBytes    int
	fetchPartBytes   int
	sstChunkBytes    int
	cpuProfile       string
	logLevel         string
	json             bool
}

func newBenchRestoreFlags() (*pflag.FlagSet, *benchRestoreFlags) {
	f := &benchRestoreFlags{}
	fs := pflag.NewFlagSet("bench restore", pflag.ContinueOnError)
	fs.IntVar(&f.keys, "keys", 1_000_000, "distinct keys in the changelog, one record each")
	fs.IntVar(&f.valueBytes, "value-bytes", 100, "bytes of each value")
	fs.IntVar(&f.partitions, "partitions", 8, "changelog partitions, one store each")
	fs.IntVar(&f.parallel, "parallel", 2, "stores restored at once (restore.max_parallel)")
	fs.StringVar(&f.brokers, "brokers", "", "`host:port` of a broker to use instead of an embedded one")
	fs.BoolVar(&f.restart, "restart", false, "after the full restore, close the stores, append --delta keys and restore again")
	fs.IntVar(&f.delta, "delta", -1, "keys overwritten before the --restart restore (-1: 1% of --keys)")
	fs.IntVar(&f.fetchMaxBytes, "fetch-max-bytes", 0, "restore fetch size in `bytes` (0: restore.fetch_max_bytes' default)")
	fs.IntVar(&f.fetchPartBytes, "fetch-max-partition-bytes", 0, "restore fetch size per partition in `bytes` (0: restore's default)")
	fs.IntVar(&f.sstChunkBytes, "sst-chunk-bytes", 0, "records per ingested SST file, in `bytes` of keys and values (0: the default; -1: no SST path)")
	fs.StringVar(&f.cpuProfile, "cpu-profile", "", "write a CPU profile of the restores to `file`")
	fs.StringVar(&f.logLevel, "log-level", "warn", "debug, info, warn or error")
	fs.BoolVar(&f.json, "json", false, "print one JSON object instead of a table")
	return fs, f
}

func (f *benchRestoreFlags) validate() error {
	var errs []error
	if f.keys < 1 {
		errs = append(errs, fmt.Errorf("--keys: %d is not positive", f.keys))
	}
	if f.valueBytes < 0 {
		errs = append(errs, fmt.Errorf("--value-bytes: %d is negative", f.valueBytes))
	}
	if f.partitions < 1 {
		errs = append(errs, fmt.Errorf("--partitions: %d is not positive", f.partitions))
	}
	if f.parallel < 1 {
		errs = append(errs, fmt.Errorf("--parallel: %d is not positive", f.parallel))
	}
	if f.delta < -1 || f.delta > f.keys {
		errs = append(errs, fmt.Errorf("--delta: %d is not between 0 and --keys (%d), or -1", f.delta, f.keys))
	}
	if f.fetchMaxBytes < 0 || f.fetchMaxBytes > math.MaxInt32 {
		errs = append(errs, fmt.Errorf("--fetch-max-bytes: %d is not between 0 and 2 GiB", f.fetchMaxBytes))
	}
	if f.fetchPartBytes < 0 || f.fetchPartBytes > math.MaxInt32 {
		errs = append(errs, fmt.Errorf("--fetch-max-partition-bytes: %d is not between 0 and 2 GiB", f.fetchPartBytes))
	}
	return errors.Join(errs...)
}

// runBenchRestore is `flowstate bench restore`: bench.Restore on an
// embedded broker unless --brokers names one.
func runBenchRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, f := newBenchRestoreFlags()
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if err := f.validate(); err != nil {
		return usageError{err}
	}
	level, err := config.ParseLevel(f.logLevel)
	if err != nil {
		return usageError{fmt.Errorf("--log-level: %w", err)}
	}
	if f.delta == -1 {
		f.delta = max(f.keys/100, 1)
	}
	log := newLogger(stderr, level)
	brokers := f.brokers
	if brokers == "" {
		c, addr, err := startBroker(brokerConfig{Partitions: f.partitions, Logger: log})
		if err != nil {
			return err
		}
		defer c.Close()
		brokers = addr
	}
	cfg := bench.RestoreConfig{
		Keys: f.keys, ValueBytes: f.valueBytes, Partitions: f.partitions, Parallel: f.parallel, Brokers: brokers,
		Restart: f.restart, Delta: f.delta, FetchMaxBytes: f.fetchMaxBytes, FetchPartitionBytes: f.fetchPartBytes,
		SSTChunkBytes: f.sstChunkBytes, CPUProfile: f.cpuProfile, Logger: log,
	}
	results, err := bench.Restore(ctx, cfg)
	if err != nil {
		return err
	}
	return bench.WriteRestore(stdout, cfg, results, f.json)
}

type benchStoresFlags struct {
	stores, keys, valueBytes int
	cacheMB, writeBufferMB   int
	dir                      string
	json                     bool
}

func newBenchStoresFlags() (*pflag.FlagSet, *benchStoresFlags) {
	fs := pflag.NewFlagSet("bench stores", pflag.ContinueOnError)
	f := &benchStoresFlags{}
	fs.IntVar(&f.stores, "stores", 100, "task databases to open under one budget")
	fs.IntVar(&f.keys, "keys", 50_000, "keys written to each database")
	fs.IntVar(&f.valueBytes, "value-bytes", 100, "bytes per value")
	fs.IntVar(&f.cacheMB, "block-cache-mb", 64, "the shared block cache, MiB (rocksdb.block_cache_mb)")
	fs.IntVar(&f.writeBufferMB, "write-buffer-mb", 64, "all memtables together, MiB (rocksdb.write_buffer_mb)")
	fs.StringVar(&f.dir, "dir", "", "directory for the databases (default: a temporary one, removed after)")
	fs.BoolVar(&f.json, "json", false, "print one JSON object instead of a table")
	return fs, f
}

// runBenchStores is `flowstate bench stores`: bench.Stores.
func runBenchStores(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, f := newBenchStoresFlags()
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if f.stores < 1 || f.keys < 1 || f.valueBytes < 0 {
		return usageError{errors.New("--stores and --keys must be at least 1, --value-bytes at least 0")}
	}
	r, err := bench.Stores(ctx, bench.StoresConfig{
		Stores: f.stores, Keys: f.keys, ValueBytes: f.valueBytes, CacheMB: f.cacheMB, WriteBufferMB: f.writeBufferMB, Dir: f.dir,
	})
	if err != nil {
		return err
	}
	return bench.WriteStores(stdout, r, f.json)
}
