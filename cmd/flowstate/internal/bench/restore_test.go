package bench_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/flowstate/flowstate/cmd/flowstate/internal/bench"
)

// TestBenchRestore runs a small restore benchmark with a restart and
// checks its JSON: the full restore replays every key through SST files,
// the delta restore only the delta, through the batch path.
func TestBenchRestore(t *testing.T) {
	cfg := bench.RestoreConfig{Keys: 2000, Partitions: 2, ValueBytes: 10, Parallel: 2, Restart: true, Delta: 30, Brokers: testBroker(t, 2)}
	results, err := bench.Restore(t.Context(), cfg)
	if err != nil {
		t.Fatalf("bench restore: %v", err)
	}
	var out bytes.Buffer
	if err := bench.WriteRestore(&out, cfg, results, true); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Bench      string                `json:"bench"`
		Keys       int                   `json:"keys"`
		Partitions int                   `json:"partitions"`
		Results    []bench.RestoreResult `json:"results"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v in %s", err, out.String())
	}
	if got.Bench != "restore" || got.Keys != 2000 || got.Partitions != 2 || len(got.Results) != 2 {
		t.Fatalf("output = %s", out.String())
	}
	want := []bench.RestoreResult{
		{Restore: "full", Records: 2000, Bytes: 2000 * 26, Path: "sst"},
		{Restore: "delta", Records: 30, Bytes: 30 * 26, Path: "batch"},
	}
	for i, r := range got.Results {
		w := want[i]
		if r.Restore != w.Restore || r.Records != w.Records || r.Bytes != w.Bytes || r.Path != w.Path {
			t.Errorf("result %d = %+v, want %+v", i, r, w)
		}
		if r.Seconds <= 0 || r.RecordsPerSec <= 0 || r.MBPerSec <= 0 {
			t.Errorf("result %d has no rate: %+v", i, r)
		}
	}
}
