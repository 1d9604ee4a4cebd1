package conformance

import (
	"bytes"
	"compress/gzip"
	"embed"
	"fmt"
	"io"
	"sync"
)

// The suites' guest modules, built from testdata/*.wat with wat2wasm and
// from guest/go with the Go toolchain (gzipped), and the SDK scripts. They
// are checked in so that `flowstate conformance` and package host's tests
// run without a toolchain;
// TestModules checks them against testdata/wasm/SOURCES and rebuilds them
// with -update.
//
//go:embed testdata/wasm/*.wasm testdata/wasm/*.wasm.gz testdata/sdk/script.txt testdata/sdk/script.golden
var embedded embed.FS

// GoGuestModule is the embedded module name of the Go SDK's conformance
// processor (guest/go).
const GoGuestModule = "go"

// modules loads embedded modules once per suite.
type modules struct {
	mu     sync.Mutex
	loaded map[string][]byte
}

// get returns the module testdata/wasm/name.wasm, or the gunzipped
// name.wasm.gz.
func (m *modules) get(name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b, ok := m.loaded[name]; ok {
		return b, nil
	}
	b, err := EmbeddedModule(name)
	if err != nil {
		return nil, err
	}
	if m.loaded == nil {
		m.loaded = map[string][]byte{}
	}
	m.loaded[name] = b
	return b, nil
}

// EmbeddedModule returns an embedded guest module by name: one of the WAT
// guests of testdata (such as "probe"), or GoGuestModule.
func EmbeddedModule(name string) ([]byte, error) {
	if b, err := embedded.ReadFile("testdata/wasm/" + name + ".wasm"); err == nil {
		return b, nil
	}
	gz, err := embedded.ReadFile("testdata/wasm/" + name + ".wasm.gz")
	if err != nil {
		return nil, fmt.Errorf("conformance: no embedded module %q", name)
	}
	r, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("conformance: module %s: %w", name, err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("conformance: module %s: %w", name, err)
	}
	return b, nil
}
