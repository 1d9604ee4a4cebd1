package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowstate/flowstate/engine"
	"github.com/flowstate/flowstate/internal/plugintest"
	"github.com/flowstate/flowstate/restore"
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
	if err := writeMetrics(&b, m); err != nil {
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

// TestHTTPStatus runs an engine whose task counts/0 is held in its restore
// by a listener, and reads /metrics, /status and `flowstate status` while
// it is RESTORING and once it is RUNNING.
func TestHTTPStatus(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an engine")
	}
	module := plugintest.Build(t, "plugins/counter")
	addr, _, adm := testCluster(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	const app, changelog = "obs", "obs-counts-changelog"
	if _, err := adm.CreateTopics(t.Context(), 2, -1, map[string]*string{"cleanup.policy": new("compact")}, changelog); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopics(t.Context(), 2, -1, nil, "in", "counts-out"); err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for i := range 3000 {
		recs = append(recs, &kgo.Record{Topic: changelog, Partition: 0, Key: []byte("k" + strconv.Itoa(i)), Value: binary.BigEndian.AppendUint64(nil, 1)})
	}
	for chunk := range slices.Chunk(recs, 300) { // many batches, so many restore fetches
		if err := cl.ProduceSync(t.Context(), chunk...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	cfg := engine.Config{
		ApplicationID:  app,
		Brokers:        []string{addr},
		StateDir:       t.TempDir(),
		CommitInterval: 100 * time.Millisecond,
		Restore:        engine.RestoreConfig{FetchMaxBytes: 4 << 10},
		Pipelines: []engine.Pipeline{{
			Name: "counts", Module: module, Inputs: []string{"in"}, Outputs: []string{"counts-out"}, Stores: []string{"counts"},
		}},
	}
	e, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	e.SetListener(engine.Listener{Restore: restore.Listener{Batch: func(b restore.BatchInfo) {
		if b.Task == "counts/0" {
			once.Do(func() {
				close(held)
				<-release
			})
		}
	}}})
	srv, err := startHTTP("127.0.0.1:0", cfg, e, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.stop(); err != nil {
			t.Error(err)
		}
	})
	ctx, cancel := context.WithCancel(t.Context())
	runErr := make(chan error, 1)
	go func() { runErr <- e.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-runErr; err != nil {
			t.Error(err)
		}
	}()
	var releaseOnce sync.Once
	unhold := func() { releaseOnce.Do(func() { close(release) }) }
	defer unhold()

	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("counts/0 never restored a batch")
	}
	metrics := get(t, "http://"+srv.addr+"/metrics")
	for _, want := range []string{`flowstate_restore_tasks{pipeline="counts"} 1`, `flowstate_tasks{pipeline="counts",role="active",state="restoring"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics while restoring lacks %q:\n%s", want, metrics)
		}
	}
	table := statusTable(t, srv.addr)
	if !regexp.MustCompile(`counts/0\s+active\s+RESTORING\s+\d+\s+\d+\s+\d+`).MatchString(table) {
		t.Errorf("status while restoring:\n%s", table)
	}

	unhold()
	waitUntil(t, "counts/0 is RUNNING", func() bool {
		table = statusTable(t, srv.addr)
		return regexp.MustCompile(`counts/0\s+active\s+RUNNING\s+0\s+3000\s+0\s`).MatchString(table)
	}, func() string { return table })
	if !regexp.MustCompile(`(?m)^\S+\s+[1-9]\d*\s+counts/0\s`).MatchString(table) {
		t.Errorf("status shows no group generation for the running process:\n%s", table)
	}
	metrics = get(t, "http://"+srv.addr+"/metrics")
	for _, want := range []string{`flowstate_restore_tasks{pipeline="counts"} 0`, `flowstate_restore_records_total{pipeline="counts"} 3000`, `flowstate_restores_total{pipeline="counts"} 2`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics after the restore lacks %q:\n%s", want, metrics)
		}
	}
}

// waitUntil polls cond until it holds, at most a minute.
func waitUntil(t *testing.T, what string, cond func() bool, last func() string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s; last seen:\n%s", what, last())
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, not waiting for time to pass
	}
}

func statusTable(t *testing.T, addr string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(t.Context(), []string{"status", "--addr", addr}, &out, &errb); code != 0 {
		t.Fatalf("flowstate status exited %d: %s", code, errb.String())
	}
	return out.String()
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return string(b)
}
