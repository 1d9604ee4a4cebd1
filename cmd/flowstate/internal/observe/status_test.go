package observe_test

import (
	"testing"
	"time"

	"github.com/flowstate/flowstate/cmd/flowstate/internal/observe"
	"github.com/flowstate/flowstate/engine"
)

// TestStatusFailedTask checks the failure fields of /status: the error and
// restarts of every task, and the seconds until a FAILED task restarts (-1
// when it does not).
func TestStatusFailedTask(t *testing.T) {
	m := engine.Metrics{Tasks: []engine.TaskInfo{
		{Task: "p/0", Pipeline: "p", State: engine.Failed, Role: engine.RoleActive, Restarts: 3,
			Error: "pipeline p partition 0 (module p.wasm): boom", RestartAt: time.Now().Add(time.Hour)},
		{Task: "p/1", Pipeline: "p", State: engine.Failed, Role: engine.RoleActive, Error: "never again"},
		{Task: "p/2", Pipeline: "p", State: engine.Running, Role: engine.RoleActive, Restarts: 1, Error: "earlier"},
	}}
	doc := observe.NewStatus(engine.Config{ApplicationID: "a"}, "v", m)
	got := doc.Tasks
	if got[0].State != "FAILED" || got[0].Restarts != 3 || got[0].Error != m.Tasks[0].Error ||
		got[0].RestartIn < 3500 || got[0].RestartIn > 3600 {
		t.Errorf("failed task with a restart: %+v", got[0])
	}
	if got[1].RestartIn != -1 || got[1].Error != "never again" {
		t.Errorf("failed task without a restart: %+v", got[1])
	}
	if got[2].RestartIn != 0 || got[2].Restarts != 1 || got[2].Error != "earlier" {
		t.Errorf("running task after a restart: %+v", got[2])
	}
}
