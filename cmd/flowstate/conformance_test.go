package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowstate/flowstate/conformance"
)

func TestConformanceCommand(t *testing.T) {
	probe, err := conformance.EmbeddedModule("probe")
	if err != nil {
		t.Fatal(err)
	}
	notProcessor := filepath.Join(t.TempDir(), "probe.wasm")
	if err := os.WriteFile(notProcessor, probe, 0o644); err != nil {
		t.Fatal(err)
	}
	goGuest, err := conformance.EmbeddedModule(conformance.GoGuestModule)
	if err != nil {
		t.Fatal(err)
	}
	processor := filepath.Join(t.TempDir(), "go.wasm")
	if err := os.WriteFile(processor, goGuest, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr string
	}{
		{name: "host cases", args: []string{"conformance"}, stdout: []string{"kv_get: absent key", "go: state carries across batches", "0 failed\n"}},
		{name: "some host cases", args: []string{"conformance", "--run", "^iter_"}, stdout: []string{"iter_next: the buffer protocol", "9 cases: 9 passed, 0 failed"}},
		{name: "a conforming processor", args: []string{"conformance", "--guest", processor}, stdout: []string{"sdk: read your writes", "PASS", " 0 failed\n"}},
		{name: "not a processor", args: []string{"conformance", "--guest", notProcessor, "--run", "count"}, code: 1,
			stdout: []string{"sdk: count", "FAIL", "1 cases: 0 passed, 1 failed"}, stderr: "1 of 1 cases failed"},
		{name: "no such module", args: []string{"conformance", "--guest", "nope.wasm"}, code: 1, stderr: "--guest: open nope.wasm"},
		{name: "no case matches", args: []string{"conformance", "--run", "^nothing$"}, code: 2, stderr: "no cases match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			if code := run(t.Context(), tt.args, &stdout, &stderr); code != tt.code {
				t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout.String(), stderr.String())
			}
			for _, s := range tt.stdout {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout.String())
				}
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, stderr.String())
			}
		})
	}
}
