package conformance_test

import (
	"os"
	"testing"

	"github.com/flowstate/flowstate/conformance"
	"github.com/flowstate/flowstate/internal/plugintest"
)

// asGuest reads a module built from the AssemblyScript sources.
func asGuest(t *testing.T, file string) []byte {
	t.Helper()
	wasm, err := os.ReadFile(plugintest.BuildAS(t, file))
	if err != nil {
		t.Fatal(err)
	}
	return wasm
}

// TestASGuestSDK runs the SDK suite on the AssemblyScript SDK's
// processor (guest/as), built from source: it must produce the Go SDK's
// golden transcript in every case.
func TestASGuestSDK(t *testing.T) {
	guest := asGuest(t, "conformance/as.wasm")
	cases, err := conformance.SDKSuite(guest)
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("the SDK suite has no cases")
	}
	for _, r := range conformance.Run(t.Context(), newHost(t), cases) {
		t.Run(r.Name, func(t *testing.T) {
			if !r.Pass() {
				t.Fatalf("want %s, got %s: %v", r.Want, r.Got, r.Err)
			}
		})
	}
}
