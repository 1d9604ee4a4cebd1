package observe_test

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/flowstate/flowstate/cmd/flowstate/internal/observe"
	"github.com/flowstate/flowstate/engine"
	"github.com/flowstate/flowstate/state"
)

// BenchmarkHooks is what the exporter adds to each batch a task
// processes: the batch and guest-call histograms.
func BenchmarkHooks(b *testing.B) {
	cfg := engine.Config{Pipelines: []engine.Pipeline{{Name: "counts"}}}
	observe.NewExporter(observe.ExporterConfig{}).Instrument(&cfg)
	b.ReportAllocs()
	for b.Loop() {
		cfg.Hooks.GuestCall("counts", 1000, 800*time.Microsecond)
		cfg.Hooks.BatchDone("counts", 1000, time.Millisecond)
	}
}

// BenchmarkScrape is one scrape of a process with 16 tasks and standbys
// of two pipelines: gathering the registry (the engine snapshot, the
// histograms, the Go and process collectors) and writing the text format.
func BenchmarkScrape(b *testing.B) {
	m := engine.Metrics{RocksDB: state.MemoryStats{BudgetBytes: 64 << 20, Stores: map[string]state.StoreMemory{}}}
	cfg := engine.Config{}
	for _, p := range []string{"counts", "sessions"} {
		cfg.Pipelines = append(cfg.Pipelines, engine.Pipeline{Name: p})
		m.Pipelines = append(m.Pipelines, engine.PipelineMetrics{Pipeline: p, FailedBatches: map[engine.OnError]int64{engine.OnErrorFail: 0}})
		m.RocksDB.Stores[p] = state.StoreMemory{MemtableBytes: 1 << 20}
		for i := range 8 {
			m.Tasks = append(m.Tasks, engine.TaskInfo{Task: fmt.Sprintf("%s/%d", p, i), Pipeline: p, Partition: int32(i), State: engine.Running, Role: engine.RoleActive})
		}
	}
	x := observe.NewExporter(observe.ExporterConfig{})
	x.Instrument(&cfg)
	cfg.Hooks.BatchDone("counts", 1, time.Millisecond)
	cfg.Hooks.CommitDone(time.Millisecond, nil)
	x.AttachMetrics(func() engine.Metrics { return m })
	b.ReportAllocs()
	for b.Loop() {
		mfs, err := x.Registry().Gather()
		if err != nil {
			b.Fatal(err)
		}
		for _, mf := range mfs {
			if _, err := expfmt.MetricFamilyToText(io.Discard, mf); err != nil {
				b.Fatal(err)
			}
		}
	}
}
