package conformance_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flowstate/flowstate/conformance"
	"github.com/flowstate/flowstate/conformance/flowstatehost"
	"github.com/flowstate/flowstate/internal/plugintest"
)

var update = flag.Bool("update", false, "rebuild testdata/wasm and rewrite testdata/sdk/script.golden")

func newHost(t *testing.T) *flowstatehost.Host {
	t.Helper()
	h, err := flowstatehost.New(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	return h
}

// goGuest builds the Go SDK's conformance processor from source.
func goGuest(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(plugintest.Build(t, "conformance/guest/go"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func run(t *testing.T, h conformance.Host, cases []conformance.Case) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			r := c.Run(t.Context(), h)
			if !r.Pass() {
				t.Fatalf("want %s: %v", r.Want, r.Err)
			}
		})
	}
}

// TestHost runs the host suite against flowstate's host, with the Go
// guest built from source.
func TestHost(t *testing.T) {
	run(t, newHost(t), conformance.HostSuite(goGuest(t)))
}

// TestSDK runs the SDK suite on the Go SDK's processor, built from source.
// With -update it rewrites the golden file from it.
func TestSDK(t *testing.T) {
	h := newHost(t)
	guest := goGuest(t)
	if *update {
		got, err := conformance.SDKTranscript(t.Context(), h, guest)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("testdata/sdk/script.golden", []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("rewrote testdata/sdk/script.golden; run again without -update")
		return
	}
	cases, err := conformance.SDKSuite(guest)
	if err != nil {
		t.Fatal(err)
	}
	run(t, h, cases)
}

// TestSDKCatchesMistakes runs the SDK suite on guests that are not
// conforming processors: the suite must fail them.
func TestSDKCatchesMistakes(t *testing.T) {
	h := newHost(t)
	probe, err := conformance.EmbeddedModule("probe")
	if err != nil {
		t.Fatal(err)
	}
	cases, err := conformance.SDKSuite(probe)
	if err != nil {
		t.Fatal(err)
	}
	var failed int
	for _, r := range conformance.Run(t.Context(), h, cases) {
		if !r.Pass() {
			failed++
		}
	}
	if failed != len(cases) {
		t.Fatalf("the probe passed %d of %d SDK cases", len(cases)-failed, len(cases))
	}
}

func TestWriteTable(t *testing.T) {
	rs := []conformance.Result{
		{Name: "kv_get: absent key", Want: "NOT_FOUND", Got: "NOT_FOUND"},
		{Name: "kv_put: bad", Want: "BAD_POINTER", Got: "OK", Err: fmt.Errorf("got OK, want BAD_POINTER")},
	}
	var b strings.Builder
	failed, err := conformance.WriteTable(&b, rs)
	if err != nil || failed != 1 {
		t.Fatalf("WriteTable = %d, %v", failed, err)
	}
	want := `CASE                WANT         GOT        RESULT
kv_get: absent key  NOT_FOUND    NOT_FOUND  PASS
kv_put: bad         BAD_POINTER  OK         FAIL

FAIL kv_put: bad:
  got OK, want BAD_POINTER

2 cases: 1 passed, 1 failed
`
	if b.String() != want {
		t.Fatalf("table\n%s\nwant\n%s", b.String(), want)
	}
}

// module is an embedded module and the sources it is built from.
type module struct {
	file    string   // under testdata/wasm
	sources []string // globs, relative to this folder
	build   func(t *testing.T) []byte
}

func modules(t *testing.T) []module {
	wats, err := filepath.Glob("testdata/*.wat")
	if err != nil {
		t.Fatal(err)
	}
	var ms []module
	for _, w := range wats {
		name := strings.TrimSuffix(filepath.Base(w), ".wat")
		ms = append(ms, module{file: name + ".wasm", sources: []string{w}, build: func(t *testing.T) []byte { return wat2wasm(t, w) }})
	}
	return append(ms, module{
		file:    conformance.GoGuestModule + ".wasm.gz",
		sources: []string{"guest/go/*.go", "../sdk/*.go", "../abi/*.go"},
		build: func(t *testing.T) []byte {
			var b bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
			zw.Write(goGuest(t))
			zw.Close()
			return b.Bytes()
		},
	})
}

// TestModules checks that the embedded modules were built from the current
// sources (testdata/wasm/SOURCES records their hashes). With -update it
// rebuilds them.
func TestModules(t *testing.T) {
	var manifest strings.Builder
	manifest.WriteString("# module, then the SHA-256 of its sources; written by go test -run TestModules -update\n")
	for _, m := range modules(t) {
		fmt.Fprintf(&manifest, "%s %s\n", m.file, sourceHash(t, m.sources))
		if *update {
			if err := os.WriteFile(filepath.Join("testdata/wasm", m.file), m.build(t), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	path := "testdata/wasm/SOURCES"
	if *update {
		if err := os.WriteFile(path, []byte(manifest.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != manifest.String() {
		t.Fatalf("the embedded modules are not built from the current sources; run\n\tgo test ./conformance -run 'TestModules|TestSDK' -update\n%s\nwant\n%s", got, manifest.String())
	}
}

// sourceHash hashes the non-test Go files and WAT files matching globs.
func sourceHash(t *testing.T, globs []string) string {
	t.Helper()
	var files []string
	for _, g := range globs {
		m, err := filepath.Glob(g)
		if err != nil || len(m) == 0 {
			t.Fatalf("sources %s: %v", g, err)
		}
		files = append(files, m...)
	}
	slices.Sort(files)
	h := sha256.New()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%s %d\n", filepath.ToSlash(f), len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func wat2wasm(t *testing.T, wat string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.wasm")
	if b, err := exec.Command("wat2wasm", wat, "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm %s (run `make deps` to install wabt): %v\n%s", wat, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
