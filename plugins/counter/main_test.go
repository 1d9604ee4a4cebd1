package main

import (
	"testing"

	"github.com/flowstate/flowstate/sdk"
	"github.com/flowstate/flowstate/sdk/sdktest"
)

func TestCounter(t *testing.T) {
	h := sdktest.New(sdktest.Config{Stores: []string{"counts"}, Topics: []string{"counts-out"}})
	t.Cleanup(h.Close)
	for _, k := range []string{"a", "b", "a", "a"} {
		if err := h.Feed("in", k, "x"); err != nil {
			t.Fatal(err)
		}
	}
	for k, want := range map[string]int64{"a": 3, "b": 1} {
		if n, ok := h.Int64("counts", k); !ok || n != want {
			t.Errorf("counts[%s] = %d (%v), want %d", k, n, ok, want)
		}
	}
	emits := h.Emits()
	if len(emits) != 4 {
		t.Fatalf("%d emits, want 4", len(emits))
	}
	if last := emits[3]; last.Topic != "counts-out" || string(last.Key) != "a" || string(last.Value) != string(sdk.Int64Bytes(3)) {
		t.Errorf("last emit = %+v, want counts-out a=3", last)
	}
}
