package observe_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/flowstate/flowstate/cmd/flowstate/internal/observe"
	"github.com/flowstate/flowstate/engine"
	"github.com/flowstate/flowstate/state"
)

func TestWriteMetrics(t *testing.T) {
	m := engine.Metrics{
		Pipelines: []engine.PipelineMetrics{
			{Pipeline: "counts", Restore: engine.RestoreMetrics{Tasks: 1, Waiting: 1, Remaining: 500, Rate: 1250.5, Records: 7000, Bytes: 70000, Restores: 3, Duration: 1500 * time.Millisecond},
				Records: 12, InputLag: 40, FailedBatches: map[engine.OnError]int64{engine.OnErrorDeadLetter: 2}},
			{Pipeline: `we"ird`},
		},
		Tasks: []engine.TaskInfo{
			{Task: "counts/0", Pipeline: "counts", State: engine.Restoring, Role: engine.RoleActive, Lag: 500},
			{Task: "counts/1", Pipeline: "counts", State: engine.Running, Role: engine.RoleActive},
			{Task: "counts/2", Pipeline: "counts", State: engine.Running, Role: engine.RoleActive},
			{Task: "counts/3", Pipeline: "counts", State: engine.Running, Role: engine.RoleStandby, Lag: 7},
		},
		Commits: 5, FailedCommits: 1,
		RocksDB: state.MemoryStats{BudgetBytes: 64 << 20, BlockCachePinned: 512, Stores: map[string]state.StoreMemory{"counts": {MemtableBytes: 4096}}},
	}
	out := exposition(t, m)
	for _, want := range []string{
		"# TYPE flowstate_restore_tasks gauge\n",
		`flowstate_restore_tasks{pipeline="counts"} 1` + "\n",
		`flowstate_restore_waiting_tasks{pipeline="counts"} 1` + "\n",
		`flowstate_restore_remaining_records{pipeline="counts"} 500` + "\n",
		`flowstate_restore_rate_records_per_second{pipeline="counts"} 1250.5` + "\n",
		"# TYPE flowstate_restore_records_total counter\n",
		`flowstate_restore_records_total{pipeline="counts"} 7000` + "\n",
		`flowstate_restores_total{pipeline="counts"} 3` + "\n",
		`flowstate_restore_duration_seconds_total{pipeline="counts"} 1.5` + "\n",
		`flowstate_restore_tasks{pipeline="we\"ird"} 0` + "\n",
		`flowstate_tasks{pipeline="counts",role="active",state="running"} 2` + "\n",
		`flowstate_tasks{pipeline="counts",role="active",state="restoring"} 1` + "\n",
		`flowstate_tasks{pipeline="counts",role="active",state="failed"} 0` + "\n",
		`flowstate_tasks{pipeline="counts",role="standby",state="running"} 1` + "\n",
		`flowstate_task_lag_records{pipeline="counts",role="active"} 500` + "\n",
		`flowstate_task_lag_records{pipeline="counts",role="standby"} 7` + "\n",
		`flowstate_restore_bytes_total{pipeline="counts"} 70000` + "\n",
		`flowstate_process_records_total{pipeline="counts"} 12` + "\n",
		`flowstate_process_failed_batches_total{outcome="dead_letter",pipeline="counts"} 2` + "\n",
		`flowstate_consumer_lag_records{pipeline="counts"} 40` + "\n",
		`flowstate_commits_total{result="failed"} 1` + "\n",
		`flowstate_rocksdb_memtable_bytes{store="counts"} 4096` + "\n",
		`flowstate_rocksdb_block_cache_pinned_usage_bytes 512` + "\n",
		`flowstate_rocksdb_budget_bytes 6.7108864e+07` + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q:\n%s", want, out)
		}
	}
	// The text parses, with every family typed once (the parser refuses a
	// second TYPE line), and the engine's families are all there.
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(out))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, out)
	}
	for _, name := range []string{"flowstate_process_emitted_records_total", "flowstate_rocksdb_table_readers_bytes", "go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := mfs[name]; !ok {
			t.Errorf("no family %s", name)
		}
	}
}

// exposition gathers an exporter attached to m in the text format.
func exposition(t *testing.T, m engine.Metrics) string {
	t.Helper()
	x := observe.NewExporter(observe.ExporterConfig{})
	x.AttachMetrics(func() engine.Metrics { return m })
	mfs, err := x.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}
