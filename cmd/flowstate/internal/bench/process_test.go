package bench_test

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/flowstate/flowstate/cmd/flowstate/internal/bench"
	"github.com/flowstate/flowstate/engine"
	"github.com/flowstate/flowstate/internal/plugintest"
)

// testBroker starts a one-node kfake cluster whose topics default to
// partitions partitions, as `flowstate bench` starts its embedded broker.
func testBroker(t *testing.T, partitions int) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(partitions), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

// TestBenchProcess runs a small process benchmark for both guarantees, and
// at-least-once again with metrics on, and checks its JSON and the ratio
// of the table.
func TestBenchProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an engine")
	}
	module := plugintest.Build(t, "plugins/counter")
	var results []bench.ProcessResult
	for _, g := range []engine.Guarantee{engine.AtLeastOnce, engine.ExactlyOnce} {
		r, err := bench.Process(t.Context(), bench.ProcessConfig{
			Guarantee: g, Records: 20000, Keys: 500, Partitions: 2, Brokers: testBroker(t, 2), Module: module,
		})
		if err != nil {
			t.Fatalf("bench process %s: %v", g, err)
		}
		results = append(results, r)
	}
	r, err := bench.Process(t.Context(), bench.ProcessConfig{
		Guarantee: engine.AtLeastOnce, Records: 20000, Keys: 500, Partitions: 2, Brokers: testBroker(t, 2), Module: module,
		Metrics: true, ScrapeEvery: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("bench process with metrics: %v", err)
	}
	results = append(results, r)
	var table bytes.Buffer
	if err := bench.WriteProcess(&table, results, false); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^metrics on/off, at_least_once: \d+\.\d{3} \(1 runs each.*; CPU per record \d+\.\d{3} `).Match(table.Bytes()) {
		t.Errorf("table without the ratio of at_least_once:\n%s", table.String())
	}
	if strings.Contains(table.String(), "exactly_once: ") {
		t.Errorf("a ratio for exactly_once, measured without metrics only:\n%s", table.String())
	}
	results = results[:2]
	var out bytes.Buffer
	if err := bench.WriteProcess(&out, results, true); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Results []bench.ProcessResult `json:"results"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v in %s", err, out.String())
	}
	if len(got.Results) != 2 || got.Results[0].Guarantee != "at_least_once" || got.Results[1].Guarantee != "exactly_once" {
		t.Fatalf("results = %+v", got.Results)
	}
	for _, r := range got.Results {
		if r.Records != 20000 || r.RecordsPerSec <= 0 || r.CPUPerRecord <= 0 {
			t.Errorf("result %+v", r)
		}
	}
}
