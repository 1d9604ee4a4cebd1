package bench

import (
	"cmp"
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
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowstate/flowstate/cmd/flowstate/internal/observe"
	"github.com/flowstate/flowstate/engine"
)

// ProcessConfig configures one run of Process.
type ProcessConfig struct {
	Guarantee  engine.Guarantee
	Records    int    // input records
	Keys       int    // distinct keys
	Partitions int    // input partitions
	Brokers    string // host:port of the broker
	Module     string // the count-by-key module (plugins/counter)
	// CommitInterval is the engine's commit interval; 0 is the default of
	// the guarantee.
	CommitInterval time.Duration
	// CPUProfile, when set, is the file of a CPU profile of the measured
	// part, with the guarantee's name inserted before the extension.
	CPUProfile string
	Logger     *slog.Logger // nil discards the logs
	// Metrics runs the engine with the exporter of `flowstate run` and a
	// scrape of its registry every ScrapeEvery (default 1s), to measure
	// what metrics cost.
	Metrics     bool
	ScrapeEvery time.Duration
}

// ProcessResult is one row of `flowstate bench process`.
type ProcessResult struct {
	Guarantee      string  `json:"guarantee"`
	Records        int     `json:"records"`
	Partitions     int     `json:"partitions"`
	CommitInterval string  `json:"commit_interval"`
	Metrics        bool    `json:"metrics"`
	Seconds        float64 `json:"seconds"`
	RecordsPerSec  float64 `json:"records_per_second"`
	// CPUPerRecord is the process's CPU time (user and system: the
	// engine, the embedded broker, the scrapes) over the measured part,
	// per record, in microseconds. On a machine shared with other work it
	// varies less than the wall time.
	CPUPerRecord float64 `json:"cpu_us_per_record"`
}

// WriteProcess prints the results of `flowstate bench process`: a table,
// or one JSON object.
func WriteProcess(w io.Writer, results []ProcessResult, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"bench": "process", "results": results})
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "guarantee\tmetrics\trecords\tpartitions\tcommit interval\tseconds\trecords/s\tCPU µs/record\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%.2f\t%.0f\t%.2f\t\n", r.Guarantee, onOff(r.Metrics), r.Records, r.Partitions, r.CommitInterval, r.Seconds, r.RecordsPerSec, r.CPUPerRecord)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, c := range MetricsCost(results) {
		fmt.Fprintf(w, "metrics on/off, %s: %.3f (%d runs each, mean records/s %.0f / %.0f); CPU per record %.3f (%.2f / %.2f µs)\n",
			c.Guarantee, c.Ratio, c.Runs, c.On, c.Off, c.CPURatio, c.CPUOn, c.CPUOff)
	}
	return nil
}

// Process measures records per second through a count-by-key processor
// under one guarantee: the input is produced first, then the clock runs
// from the moment every task is RUNNING until the group has committed the
// input's end.
func Process(ctx context.Context, cfg ProcessConfig) (ProcessResult, error) {
	g, brokers := cfg.Guarantee, cfg.Brokers
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	app := "bench-" + string(g) + "-" + run
	in, out := app+"-in", "counts-out"

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(1<<20))
	if err != nil {
		return ProcessResult{}, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	resps, err := adm.CreateTopics(ctx, int32(cfg.Partitions), -1, nil, in, out)
	if err != nil {
		return ProcessResult{}, fmt.Errorf("create topics: %w", err)
	}
	for _, r := range resps {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return ProcessResult{}, fmt.Errorf("create topic %s: %w", r.Topic, r.Err)
		}
	}
	var perr error
	var mu sync.Mutex
	for i := range cfg.Records {
		v := make([]byte, 8)
		binary.BigEndian.PutUint64(v, uint64(i))
		cl.Produce(ctx, &kgo.Record{Topic: in, Key: []byte("k" + strconv.Itoa(i%cfg.Keys)), Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				perr = err
				mu.Unlock()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return ProcessResult{}, err
	}
	if perr != nil {
		return ProcessResult{}, fmt.Errorf("produce input: %w", perr)
	}
	ends, err := adm.ListEndOffsets(ctx, in)
	if err != nil {
		return ProcessResult{}, err
	}

	dir, err := os.MkdirTemp("", "flowstate-bench-")
	if err != nil {
		return ProcessResult{}, err
	}
	defer os.RemoveAll(dir)
	ecfg := engine.Config{
		ApplicationID:  app,
		Brokers:        []string{brokers},
		StateDir:       dir,
		CommitInterval: cfg.CommitInterval,
		Guarantee:      g,
		Logger:         cfg.Logger,
		Pipelines: []engine.Pipeline{{
			Name: "counter", Module: cfg.Module,
			Inputs: []string{in}, Outputs: []string{out}, Stores: []string{"counts"},
		}},
	}
	var x *observe.Exporter
	if cfg.Metrics {
		x = observe.NewExporter(observe.ExporterConfig{Logger: cfg.Logger})
		x.Instrument(&ecfg)
	}
	e, err := engine.New(ecfg)
	if err != nil {
		return ProcessResult{}, err
	}
	var scrapes sync.WaitGroup
	defer scrapes.Wait()
	if x != nil {
		x.Attach(e)
		every := cmp.Or(cfg.ScrapeEvery, time.Second)
		scrapeCtx, stop := context.WithCancel(ctx)
		defer stop()
		scrapes.Go(func() { scrape(scrapeCtx, x, every) })
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
		if nRunning == cfg.Partitions {
			once.Do(func() { close(running) })
		}
		mu.Unlock()
	}})
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- e.Run(runCtx) }()

	var begin time.Time
	var cpu0 time.Duration
	select {
	case <-running:
		begin = time.Now()
		cpu0 = cpuTime()
		if cfg.CPUProfile != "" {
			stop, err := startCPUProfile(cfg.CPUProfile, string(g))
			if err != nil {
				return ProcessResult{}, err
			}
			defer stop()
		}
	case err := <-errc:
		return ProcessResult{}, fmt.Errorf("engine stopped: %w", err)
	case <-ctx.Done():
		return ProcessResult{}, ctx.Err()
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
			return ProcessResult{}, fmt.Errorf("engine stopped: %w", err)
		case <-ctx.Done():
			return ProcessResult{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	took := time.Since(begin)
	cpu := cpuTime() - cpu0
	cancel()
	if err := <-errc; err != nil {
		return ProcessResult{}, err
	}
	ci := cfg.CommitInterval
	if ci == 0 {
		c := engine.Config{Guarantee: g}
		c.EnsureDefaults()
		ci = c.CommitInterval
	}
	return ProcessResult{
		Guarantee: string(g), Records: cfg.Records, Partitions: cfg.Partitions, CommitInterval: ci.String(),
		Metrics: cfg.Metrics, Seconds: took.Seconds(), RecordsPerSec: float64(cfg.Records) / took.Seconds(),
		CPUPerRecord: float64(cpu.Microseconds()) / float64(cfg.Records),
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

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// Cost compares the runs of one guarantee with metrics on and off.
type Cost struct {
	Guarantee string
	Runs      int     // runs of each
	On, Off   float64 // mean records/s
	Ratio     float64 // On / Off: below 1 is what metrics cost
	// CPUOn and CPUOff are the mean CPU µs per record, CPURatio
	// CPUOn / CPUOff: above 1 is what metrics cost.
	CPUOn, CPUOff, CPURatio float64
}

// MetricsCost returns, for each guarantee with runs both with and without
// metrics, the ratio of their mean throughputs.
func MetricsCost(results []ProcessResult) []Cost {
	type sums struct{ on, off, cpuOn, cpuOff []float64 }
	by := map[string]*sums{}
	var order []string
	for _, r := range results {
		s := by[r.Guarantee]
		if s == nil {
			s = &sums{}
			by[r.Guarantee] = s
			order = append(order, r.Guarantee)
		}
		if r.Metrics {
			s.on = append(s.on, r.RecordsPerSec)
			s.cpuOn = append(s.cpuOn, r.CPUPerRecord)
		} else {
			s.off = append(s.off, r.RecordsPerSec)
			s.cpuOff = append(s.cpuOff, r.CPUPerRecord)
		}
	}
	mean := func(xs []float64) float64 {
		var t float64
		for _, x := range xs {
			t += x
		}
		return t / float64(len(xs))
	}
	var out []Cost
	for _, g := range order {
		s := by[g]
		if len(s.on) == 0 || len(s.off) == 0 {
			continue
		}
		c := Cost{Guarantee: g, Runs: min(len(s.on), len(s.off)), On: mean(s.on), Off: mean(s.off)}
		c.Ratio = c.On / c.Off
		c.CPUOn, c.CPUOff = mean(s.cpuOn), mean(s.cpuOff)
		c.CPURatio = c.CPUOn / c.CPUOff
		out = append(out, c)
	}
	return out
}

// scrape gathers x's registry into the text format every every until ctx
// ends, as a Prometheus server would.
func scrape(ctx context.Context, x *observe.Exporter, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			mfs, err := x.Registry().Gather()
			if err != nil {
				continue
			}
			for _, mf := range mfs {
				_, _ = expfmt.MetricFamilyToText(io.Discard, mf)
			}
		}
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
