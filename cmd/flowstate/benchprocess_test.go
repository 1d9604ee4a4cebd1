package main

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/flowstate/flowstate/internal/plugintest"
)

// TestBenchProcess runs a small `flowstate bench process` for both
// guarantees and checks its JSON.
func TestBenchProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an engine")
	}
	module := plugintest.Build(t, "plugins/counter")
	var out, errb bytes.Buffer
	err := runBenchProcess(t.Context(), []string{"--records", "20000", "--keys", "500", "--partitions", "2", "--module", module, "--json"}, &out, &errb)
	if err != nil {
		t.Fatalf("bench process: %v\n%s", err, errb.String())
	}
	var got struct {
		Results []processResult `json:"results"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v in %s", err, out.String())
	}
	if len(got.Results) != 2 || got.Results[0].Guarantee != "at_least_once" || got.Results[1].Guarantee != "exactly_once" {
		t.Fatalf("results = %+v", got.Results)
	}
	for _, r := range got.Results {
		if r.Records != 20000 || r.RecordsPerSec <= 0 {
			t.Errorf("result %+v", r)
		}
	}
}
