package engine_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/flowstate/flowstate/engine"
	"github.com/flowstate/flowstate/internal/plugintest"
	"github.com/flowstate/flowstate/internal/poll"
)

// TestPoisonRecordFailsTask checks error policy fail, the default: a batch
// whose guest call fails (a guest error, or a module that dies) fails its
// task with an error naming the batch, after committing everything before
// that batch and nothing after it. Under on_failure fail_task (the default)
// the task goes FAILED and restarts from its committed offsets, failing
// again on the same batch, while the engine runs on; under stop_process the
// engine stops with the error.
func TestPoisonRecordFailsTask(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		policy      engine.OnError
		onFailure   engine.OnFailure
		want        []string
	}{
		{"guest error", "poison", "", engine.OnFailureStopProcess, []string{"offset 50", "poison record at offset 57", "poison/"}},
		{"module exit", "exit", "", engine.OnFailureStopProcess, []string{"offset 50", "exit", "poison/"}},
		{"policy fail", "poison", engine.OnErrorFail, engine.OnFailureStopProcess, []string{"offset 50", "poison record at offset 57", "poison/"}},
		{"fail task", "poison", "", "", []string{"offset 50", "poison record at offset 57", "pipeline poison partition", "poison.wasm)"}},
		{"fail task, module exit", "exit", "", engine.OnFailureFailTask, []string{"offset 50", "exit", "pipeline poison partition"}},
	} {
		t.Run(tc.name, func(t *testing.T) { testPoison(t, tc.value, tc.policy, tc.onFailure, tc.want) })
	}
}

func testPoison(t *testing.T, poison string, policy engine.OnError, onFailure engine.OnFailure, want []string) {
	c := newCluster(t, "in", "out")
	var kvs [][2]string
	for i := range 100 {
		v := "v"
		if i == 57 {
			v = poison
		}
		kvs = append(kvs, [2]string{"k", v}) // one key: one partition, in order
	}
	c.produce(t, "in", kvs)

	dir := t.TempDir()
	a := &app{cfg: engine.Config{
		ApplicationID:  "poison",
		Brokers:        []string{c.addr},
		StateDir:       dir,
		CommitInterval: time.Hour, // only the failure commits
		Logger:         testLogger(t),
		Pipelines: []engine.Pipeline{{
			Name:            "poison",
			Module:          plugintest.Build(t, "engine/testdata/poison"),
			Inputs:          []string{"in"},
			Outputs:         []string{"out"},
			Stores:          []string{"seen"},
			MaxBatchRecords: 10,
			OnError:         policy,
			OnFailure:       onFailure,
			Restart:         engine.Restart{InitialBackoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond},
		}},
	}}
	stop := a.start(t)
	var err error
	if onFailure == engine.OnFailureStopProcess {
		deadline := time.Now().Add(time.Minute)
		for err == nil {
			select {
			case err = <-a.failed:
			case <-time.After(time.Until(deadline)):
				t.Fatal("the engine did not fail on the poison record")
			}
		}
		_ = stop()
	} else {
		// FAILED, restarted from offset 50 and FAILED again, with the
		// engine running all along.
		var info engine.TaskInfo
		poll.Until(t, time.Minute, func() error {
			select {
			case err := <-a.failed:
				t.Fatalf("the engine stopped: %v", err)
			default:
			}
			for _, ti := range a.eng.Metrics().Tasks {
				if ti.State == engine.Failed && ti.Restarts >= 2 {
					info = ti
					return nil
				}
			}
			return errors.New("no task FAILED after two restarts")
		})
		err = errors.New(info.Error)
		if serr := stop(); serr != nil {
			t.Fatalf("stop: %v", serr)
		}
	}
	t.Logf("task failed as expected: %v", err)
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}

	// The batch before the poison one is committed, to the group and to the
	// store; nothing of the poison batch is.
	committed, ferr := c.adm.FetchOffsets(t.Context(), "poison")
	if ferr != nil {
		t.Fatal(ferr)
	}
	var part int32 = -1
	committed.Each(func(o kadm.OffsetResponse) {
		if o.Topic == "in" && o.At > 0 {
			part = o.Partition
			if o.At != 50 {
				t.Errorf("committed offset of in/%d = %d, want 50", o.Partition, o.At)
			}
		}
	})
	if part < 0 {
		t.Fatal("no offset committed for topic in")
	}
	if n := storedCount(t, dir, "poison", "poison", part); n != 50 {
		t.Errorf("store count = %d, want 50", n)
	}
	if got := c.latest(t, "out")["k"]; got != "50" {
		t.Errorf("last output = %q, want 50", got)
	}
}

// TestBadModule checks that a module that is not Wasm stops the start with
// an error naming the pipeline, under on_failure stop_process (under
// fail_task its tasks fail: TestHostileModules).
func TestBadModule(t *testing.T) {
	c := newCluster(t, "in")
	bad := filepath.Join(t.TempDir(), "bad.wasm")
	if err := os.WriteFile(bad, []byte("not wasm at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(engine.Config{
		ApplicationID: "bad",
		Brokers:       []string{c.addr},
		StateDir:      t.TempDir(),
		Pipelines:     []engine.Pipeline{{Name: "broken", Module: bad, Inputs: []string{"in"}, OnFailure: engine.OnFailureStopProcess}},
	})
	if err != nil {
		t.Fatal(err)
	}
	err = e.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "pipeline broken") {
		t.Fatalf("Run = %v, want an error naming pipeline broken", err)
	}
}
