package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowstate/flowstate/cmd/flowstate/internal/observe"
	"github.com/flowstate/flowstate/engine"
	"github.com/flowstate/flowstate/internal/plugintest"
	"github.com/flowstate/flowstate/internal/poll"
	"github.com/flowstate/flowstate/restore"
)

// observed is an engine running plugins/counter over topic "in" (2
// partitions) with the exporter, the HTTP server and a gate on the restore
// of task counts/0, whose changelog holds restoreRecords records.
type observed struct {
	cfg  engine.Config
	srv  *observe.Server
	e    *engine.Engine
	cl   *kgo.Client
	gate chan struct{} // each restore batch of counts/0 takes one token; close to let all through
}

const restoreRecords = 3000

func startObserved(t *testing.T, app string) *observed {
	t.Helper()
	module := plugintest.Build(t, "plugins/counter")
	addr, _, adm := testCluster(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	changelog := app + "-counts-changelog"
	if _, err := adm.CreateTopics(t.Context(), 2, -1, map[string]*string{"cleanup.policy": new("compact")}, changelog); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopics(t.Context(), 2, -1, nil, "in", "counts-out"); err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for i := range restoreRecords {
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
		// Small fetches and SST chunks: the restore of counts/0 takes
		// many batches, so a page sees it move.
		Restore: restore.Settings{FetchMaxBytes: 4 << 10, SSTChunkBytes: 4 << 10},
		Pipelines: []engine.Pipeline{{
			Name: "counts", Module: module, Inputs: []string{"in"}, Outputs: []string{"counts-out"}, Stores: []string{"counts"},
		}},
	}
	x := observe.NewExporter(observe.ExporterConfig{Logger: slog.New(slog.DiscardHandler)})
	x.Instrument(&cfg)
	e, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	o := &observed{cfg: cfg, e: e, cl: cl, gate: make(chan struct{})}
	ctx, cancel := context.WithCancel(t.Context())
	e.SetListener(engine.Listener{Restore: restore.Listener{Batch: func(b restore.BatchInfo) {
		if b.Task == "counts/0" {
			select {
			case <-o.gate:
			case <-ctx.Done():
			}
		}
	}}})
	o.srv, err = observe.Start(observe.ServerConfig{Addr: "127.0.0.1:0", Engine: cfg, Version: version, Exporter: x}, e)
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-runErr; err != nil {
			t.Error(err)
		}
		if err := o.srv.Stop(); err != nil {
			t.Error(err)
		}
	})
	return o
}

// produce writes n records to "in", spread over both partitions.
func (o *observed) produce(t *testing.T, n int) {
	t.Helper()
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: "in", Partition: int32(i % 2), Key: []byte("key-" + strconv.Itoa(i%1000))})
	}
	if err := o.cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// scrape reads /metrics with the Prometheus text parser.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	body := get(t, "http://"+addr+"/metrics")
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// value sums the samples of a family whose labels include want (name=value
// pairs); a histogram's samples count as their counts. ok is false when no
// sample matches.
func value(mfs map[string]*dto.MetricFamily, name string, want ...string) (v float64, ok bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for i := 0; i+1 < len(want); i += 2 {
			match = match && labels[want[i]] == want[i+1]
		}
		if !match {
			continue
		}
		ok = true
		switch {
		case m.Counter != nil:
			v += m.Counter.GetValue()
		case m.Gauge != nil:
			v += m.Gauge.GetValue()
		case m.Histogram != nil:
			v += float64(m.Histogram.GetSampleCount())
		case m.Untyped != nil:
			v += m.Untyped.GetValue()
		}
	}
	return v, ok
}

// TestMetricsExposition reads /metrics of a running engine with the
// Prometheus parser: the families exist, and they move as records flow.
func TestMetricsExposition(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an engine")
	}
	o := startObserved(t, "obsm")
	close(o.gate)
	addr := o.srv.Addr()
	poll.Until(t, time.Minute, func() error {
		if v, _ := value(scrape(t, addr), "flowstate_restores_total", "pipeline", "counts"); v < 2 {
			return fmt.Errorf("%v restores done, want 2", v)
		}
		return nil
	})
	before := scrape(t, addr)
	for _, name := range []string{
		"flowstate_process_records_total", "flowstate_process_emitted_records_total", "flowstate_process_skipped_records_total",
		"flowstate_process_dead_letter_records_total", "flowstate_process_failed_batches_total", "flowstate_consumer_lag_records",
		"flowstate_commits_total", "flowstate_restore_records_total", "flowstate_restore_bytes_total", "flowstate_tasks",
		"flowstate_task_lag_records", "flowstate_rocksdb_budget_bytes", "flowstate_rocksdb_block_cache_usage_bytes",
		"flowstate_rocksdb_block_cache_pinned_usage_bytes", "flowstate_rocksdb_memtable_bytes", "flowstate_rocksdb_table_readers_bytes",
		"flowstate_rocksdb_pending_compaction_bytes", "flowstate_kafka_read_bytes_total", "flowstate_kafka_fetch_records_total",
		"go_goroutines", "go_gc_duration_seconds", "process_resident_memory_bytes", "process_cpu_seconds_total",
	} {
		if _, ok := before[name]; !ok {
			t.Errorf("/metrics has no family %s", name)
		}
	}
	for _, c := range []struct {
		name   string
		labels []string
		min    float64
	}{
		{"flowstate_restore_records_total", []string{"pipeline", "counts"}, restoreRecords},
		{"flowstate_restore_bytes_total", []string{"pipeline", "counts"}, restoreRecords * 5}, // "k0".."k2999" and 8-byte values
		{"flowstate_kafka_fetch_records_total", []string{"client", engine.ClientRestore}, restoreRecords},
		{"flowstate_rocksdb_budget_bytes", nil, 1 << 20},
		{"flowstate_rocksdb_databases", nil, 2},
		{"flowstate_tasks", []string{"pipeline", "counts", "role", "active", "state", "running"}, 2},
	} {
		if v, _ := value(before, c.name, c.labels...); v < c.min {
			t.Errorf("%s%v = %v, want at least %v", c.name, c.labels, v, c.min)
		}
	}

	const n = 2000
	o.produce(t, n)
	// What grows with the records, and by how much at least; commits and
	// memtables follow the processing by up to a commit interval.
	grows := []struct {
		name   string
		labels []string
		grow   float64
	}{
		{"flowstate_process_records_total", []string{"pipeline", "counts"}, n},
		{"flowstate_process_emitted_records_total", []string{"pipeline", "counts"}, n},
		{"flowstate_process_batch_duration_seconds", []string{"pipeline", "counts"}, 2},
		{"flowstate_process_guest_call_duration_seconds", []string{"pipeline", "counts"}, 2},
		{"flowstate_commits_total", []string{"result", "ok"}, 1},
		{"flowstate_commit_duration_seconds", []string{"result", "ok"}, 1},
		{"flowstate_kafka_produce_records_total", []string{"client", engine.ClientConsumer}, n},
		{"flowstate_kafka_fetch_records_total", []string{"client", engine.ClientConsumer}, n},
		{"flowstate_rocksdb_memtable_bytes", []string{"store", "counts"}, 1},
	}
	var after map[string]*dto.MetricFamily
	poll.Until(t, time.Minute, func() error {
		after = scrape(t, addr)
		var errs []error
		for _, c := range grows {
			b, _ := value(before, c.name, c.labels...)
			a, _ := value(after, c.name, c.labels...)
			if a-b < c.grow {
				errs = append(errs, fmt.Errorf("%s%v went from %v to %v, want a growth of at least %v", c.name, c.labels, b, a, c.grow))
			}
		}
		return errors.Join(errs...)
	})
	if v, _ := value(after, "flowstate_process_records_total", "pipeline", "counts"); v != n {
		t.Errorf("%v records processed, want %d", v, n)
	}
	if v, ok := value(after, "flowstate_process_failed_batches_total", "pipeline", "counts", "outcome", "fail"); !ok || v != 0 {
		t.Errorf("failed batches (fail) %v (present %v), want 0", v, ok)
	}
	// Once the group has committed the input's end, no lag is left.
	poll.Until(t, time.Minute, func() error {
		if v, ok := value(scrape(t, addr), "flowstate_consumer_lag_records", "pipeline", "counts"); !ok || v != 0 {
			return fmt.Errorf("consumer lag %v (present %v), want 0", v, ok)
		}
		return nil
	})
}
