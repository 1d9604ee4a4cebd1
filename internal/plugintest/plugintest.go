// Package plugintest builds Go guest modules for tests: the example plugins
// and test guests, compiled to wasip1 with the Go toolchain running the test.
package plugintest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

var (
	mu    sync.Mutex
	built = map[string]string{}
)

// Root returns the repository root.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Build compiles the package at dir (relative to the repository root, such
// as "plugins/wordcount") to a reactor module and returns the .wasm path.
// Each package is built once per test binary.
func Build(t testing.TB, dir string) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if p, ok := built[dir]; ok {
		return p
	}
	// One fixed path per package, so that repeated runs do not fill the temp
	// directory; test binaries running side by side each build to their own
	// file and rename it into place.
	out := filepath.Join(os.TempDir(), "flowstate-plugintest")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	wasm := filepath.Join(out, strings.ReplaceAll(dir, "/", "_")+".wasm")
	tmp := wasm + "." + strconv.Itoa(os.Getpid())
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", tmp, "./"+dir)
	cmd.Dir = Root()
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", dir, err, b)
	}
	if err := os.Rename(tmp, wasm); err != nil {
		t.Fatal(err)
	}
	built[dir] = wasm
	return wasm
}
