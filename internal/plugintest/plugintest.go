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

var (
	asOnce sync.Once
	asDir  string
	asErr  error
	asLog  []byte
)

// BuildAS returns the path of a module that scripts/asbuild.sh compiles
// from the AssemblyScript sources, such as "conformance/as.wasm" or
// "plugins/wordcount-as.wasm". The script runs once per test binary, into
// one fixed directory that test binaries running side by side share (it
// builds under a lock and moves each module into place whole). Without npm
// the test is skipped, except under CI, which must run it.
func BuildAS(t testing.TB, file string) string {
	t.Helper()
	if _, err := exec.LookPath("npm"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("npm is not on PATH, and CI must build the AssemblyScript modules: %v", err)
		}
		t.Skipf("npm is not on PATH: %v", err)
	}
	asOnce.Do(func() {
		asDir = filepath.Join(os.TempDir(), "flowstate-asbuild")
		cmd := exec.Command(filepath.Join(Root(), "scripts", "asbuild.sh"), asDir)
		asLog, asErr = cmd.CombinedOutput()
	})
	if asErr != nil {
		t.Fatalf("scripts/asbuild.sh: %v\n%s", asErr, asLog)
	}
	return filepath.Join(asDir, file)
}
