package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowstate/flowstate/engine"
)

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
	return fs, f
}

// processResult is one row of `flowstate bench process`.
type processResult struct {
	Guarantee      string  `json:"guarantee"`
	Records        int     `json:"records"`
	Partitions     int     `json:"partitions"`
	CommitInterval string  `json:"commit_interval"`
	Seconds        float64 `json:"seconds"`
	RecordsPerSec  float64 `json:"records_per_second"`
}

// runBenchProcess measures records per second through a count-by-key
// processor, for each guarantee in one run: the input is produced first,
// then the clock runs from the moment every task is RUNNING until the
// group has committed the input's end.
func runBenchProcess(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, f := newBenchProcessFlags()
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if _, err := os.Stat(f.module); err != nil {
		return fmt.Errorf("--module: %w (run make plugins)", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var results []processResult
	for _, g := range strings.Split(f.guarantees, ",") {
		r, err := benchProcessOnce(ctx, f, engine.Guarantee(strings.TrimSpace(g)), log)
		if err != nil {
			return fmt.Errorf("%s: %w", g, err)
		}
		results = append(results, r)
	}
	if f.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"bench": "process", "results": results})
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "guarantee\trecords\tpartitions\tcommit interval\tseconds\trecords/s\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%.2f\t%.0f\t\n", r.Guarantee, r.Records, r.Partitions, r.CommitInterval, r.Seconds, r.RecordsPerSec)
	}
	return tw.Flush()
}

func benchProcessOnce(ctx context.Context, f *benchProcessFlags, g engine.Guarantee, log *slog.Logger) (processResult, error) {
	brokers := f.brokers
	if brokers == "" {
		c, addr, err := startBroker(brokerConfig{Partitions: f.partitions, Logger: log})
		if err != nil {
			return processResult{}, err
		}
		defer c.Close()
		brokers = addr
	}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	app := "bench-" + string(g) + "-" + run
	in, out := app+"-in", "counts-out"

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(1<<20))
	if err != nil {
		return processResult{}, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	resps, err := adm.CreateTopics(ctx, int32(f.partitions), -1, nil, in, out)
	if err != nil {
		return processResult{}, fmt.Errorf("create topics: %w", err)
	}
	for _, r := range resps {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return processResult{}, fmt.Errorf("create topic %s: %w", r.Topic, r.Err)
		}
	}
	var perr error
	var mu sync.Mutex
	for i := range f.records {
		v := make([]byte, 8)
		binary.BigEndian.PutUint64(v, uint64(i))
		cl.Produce(ctx, &kgo.Record{Topic: in, Key: []byte("k" + strconv.Itoa(i%f.keys)), Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				perr = err
				mu.Unlock()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return processResult{}, err
	}
	if perr != nil {
		return processResult{}, fmt.Errorf("produce input: %w", perr)
	}
	ends, err := adm.ListEndOffsets(ctx, in)
	if err != nil {
		return processResult{}, err
	}

	dir, err := os.MkdirTemp("", "flowstate-bench-")
	if err != nil {
		return processResult{}, err
	}
	defer os.RemoveAll(dir)
	e, err := engine.New(engine.Config{
		ApplicationID:  app,
		Brokers:        []string{brokers},
		StateDir:       dir,
		CommitInterval: f.commitInterval,
		Guarantee:      g,
		Logger:         log,
		Pipelines: []engine.Pipeline{{
			Name: "counter", Module: f.module,
			Inputs: []string{in}, Outputs: []string{out}, Stores: []string{"counts"},
		}},
	})
	if err != nil {
		return processResult{}, err
	}
	running := make(chan struct{})
	var once sync.Once
	var nRunning int
	e.SetListener(engine.Listener{TaskState: func(_ string, s engine.TaskState) {
		if s != engine.Running {
			return
		}
		mu.Lock()
		nRunning++
		if nRunning == f.partitions {
			once.Do(func() { close(running) })
		}
		mu.Unlock()
	}})
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- e.Run(runCtx) }()

	var begin time.Time
	select {
	case <-running:
		begin = time.Now()
		if f.cpuProfile != "" {
			stop, err := startCPUProfile(f.cpuProfile, string(g))
			if err != nil {
				return processResult{}, err
			}
			defer stop()
		}
	case err := <-errc:
		return processResult{}, fmt.Errorf("engine stopped: %w", err)
	case <-ctx.Done():
		return processResult{}, ctx.Err()
	}
	for {
		committed, err := adm.FetchOffsets(ctx, app)
		done := err == nil
		ends.Each(func(o kadm.ListedOffset) {
			if c, ok := committed.Lookup(in, o.Partition); !ok || c.At < o.Offset {
				done = false
			}
		})
		if done {
			break
		}
		select {
		case err := <-errc:
			return processResult{}, fmt.Errorf("engine stopped: %w", err)
		case <-ctx.Done():
			return processResult{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	took := time.Since(begin)
	cancel()
	if err := <-errc; err != nil {
		return processResult{}, err
	}
	ci := f.commitInterval
	if ci == 0 {
		c := engine.Config{Guarantee: g}
		c.EnsureDefaults()
		ci = c.CommitInterval
	}
	return processResult{
		Guarantee: string(g), Records: f.records, Partitions: f.partitions, CommitInterval: ci.String(),
		Seconds: took.Seconds(), RecordsPerSec: float64(f.records) / took.Seconds(),
	}, nil
}

// startCPUProfile writes a CPU profile to path with tag inserted before its
// extension (cpu.out -> cpu.exactly_once.out) until the returned stop.
func startCPUProfile(path, tag string) (stop func(), err error) {
	ext := filepath.Ext(path)
	path = strings.TrimSuffix(path, ext) + "." + tag + ext
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
