package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
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

	"github.com/flowstate/flowstate/cmd/flowstate/internal/observe"
	"github.com/flowstate/flowstate/engine"
	"github.com/flowstate/flowstate/internal/plugintest"
	"github.com/flowstate/flowstate/internal/poll"
	"github.com/flowstate/flowstate/restore"
)

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
		Restore:        restore.Settings{FetchMaxBytes: 4 << 10},
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
	srv, err := observe.Start(observe.ServerConfig{Addr: "127.0.0.1:0", Engine: cfg, Version: version, Logger: slog.New(slog.DiscardHandler)}, e)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
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
	// counts/1 has nothing to restore: it runs as soon as its store is
	// open and its instance made, which its own goroutine does.
	poll.Until(t, 30*time.Second, func() error {
		metrics := get(t, "http://"+srv.Addr()+"/metrics")
		for _, want := range []string{`flowstate_restore_tasks{pipeline="counts"} 1`, `flowstate_tasks{pipeline="counts",role="active",state="restoring"} 1`} {
			if !strings.Contains(metrics, want) {
				return fmt.Errorf("/metrics while restoring lacks %q:\n%s", want, metrics)
			}
		}
		return nil
	})
	table := statusTable(t, srv.Addr())
	if !regexp.MustCompile(`counts/0\s+active\s+RESTORING\s+\d+\s+\d+\s+\d+`).MatchString(table) {
		t.Errorf("status while restoring:\n%s", table)
	}

	unhold()
	waitUntil(t, "counts/0 is RUNNING", func() bool {
		table = statusTable(t, srv.Addr())
		return regexp.MustCompile(`counts/0\s+active\s+RUNNING\s+0\s+3000\s+0\s`).MatchString(table)
	}, func() string { return table })
	if !regexp.MustCompile(`(?m)RESTARTS\s+ERROR$`).MatchString(table) || !regexp.MustCompile(`(?m)counts/0\s+active\s+RUNNING\s.*\s0\s+-$`).MatchString(table) {
		t.Errorf("status shows no restarts and error columns:\n%s", table)
	}
	if !regexp.MustCompile(`(?m)^\S+\s+[1-9]\d*\s+counts/0\s`).MatchString(table) {
		t.Errorf("status shows no group generation for the running process:\n%s", table)
	}
	metrics := get(t, "http://"+srv.Addr()+"/metrics")
	for _, want := range []string{`flowstate_restore_tasks{pipeline="counts"} 0`, `flowstate_restore_records_total{pipeline="counts"} 3000`, `flowstate_restores_total{pipeline="counts"} 2`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics after the restore lacks %q:\n%s", want, metrics)
		}
	}
}

// waitUntil polls cond until it holds, at most a minute.
func waitUntil(t *testing.T, what string, cond func() bool, last func() string) {
	t.Helper()
	poll.Until(t, time.Minute, func() error {
		if !cond() {
			return fmt.Errorf("timed out waiting until %s; last seen:\n%s", what, last())
		}
		return nil
	})
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
