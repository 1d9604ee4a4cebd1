package observe_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowstate/flowstate/cmd/flowstate/internal/observe"
	"github.com/flowstate/flowstate/engine"
)

func TestWriteMetrics(t *testing.T) {
	m := engine.Metrics{
		Pipelines: []engine.PipelineMetrics{
			{Pipeline: "counts", Restore: engine.RestoreMetrics{Tasks: 1, Waiting: 1, Remaining: 500, Rate: 1250.5, Records: 7000, Restores: 3, Duration: 1500 * time.Millisecond}},
			{Pipeline: `we"ird`},
		},
		Tasks: []engine.TaskInfo{
			{Task: "counts/0", Pipeline: "counts", State: engine.Restoring, Role: engine.RoleActive, Lag: 500},
			{Task: "counts/1", Pipeline: "counts", State: engine.Running, Role: engine.RoleActive},
			{Task: "counts/2", Pipeline: "counts", State: engine.Running, Role: engine.RoleActive},
			{Task: "counts/3", Pipeline: "counts", State: engine.Running, Role: engine.RoleStandby, Lag: 7},
		},
	}
	var b strings.Builder
	if err := observe.WriteMetrics(&b, m); err != nil {
		t.Fatal(err)
	}
	out := b.String()
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
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q:\n%s", want, out)
		}
	}
	// Every sample line is name{labels} value, and every family is typed
	// once.
	types := map[string]int{}
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			types[strings.Fields(name)[0]]++
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		_, value, ok := strings.Cut(line, "} ")
		if _, err := strconv.ParseFloat(value, 64); !ok || err != nil {
			t.Errorf("bad sample line %q", line)
		}
	}
	for name, n := range types {
		if n != 1 {
			t.Errorf("%s typed %d times", name, n)
		}
	}
}
