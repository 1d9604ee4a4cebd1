package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowstate/flowstate/internal/plugintest"
)

// TestExamples checks that the example configs load, with their modules
// replaced by a file that exists (the plugins may not be built).
func TestExamples(t *testing.T) {
	module := writeFile(t, t.TempDir(), "m.wasm", "\x00asm")
	for _, tt := range []struct {
		file, pipeline string
	}{
		{"wordcount.yaml", "WORDCOUNT"},
		{"sessions.yaml", "SESSIONS"},
	} {
		t.Run(tt.file, func(t *testing.T) {
			clearEnv(t)
			t.Setenv("FLOWSTATE_PIPELINES__"+tt.pipeline+"__MODULE", module)
			c, err := Load(Source{Path: filepath.Join(plugintest.Root(), "examples", tt.file)})
			if err != nil {
				t.Fatal(err)
			}
			check(t, "pipelines", len(c.Engine.Pipelines), 1)
		})
	}
}

// TestREADMEConfig loads the README's config example, so that every key it
// shows exists and every value it shows is valid.
func TestREADMEConfig(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(plugintest.Root(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "## Configuration\n\n```yaml\n")
	if !ok {
		t.Fatal("README has no yaml block under ## Configuration")
	}
	example, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("README's config example does not end")
	}
	// The example's module path is relative to the project root.
	example = strings.ReplaceAll(example, "bin/plugins/wordcount.wasm", plugintest.Build(t, "plugins/wordcount"))
	cfg, err := Load(Source{Path: writeFile(t, t.TempDir(), "app.yaml", example)})
	if err != nil {
		t.Fatalf("README's config example: %v", err)
	}
	if cfg.Engine.InstanceID != "wordcount-1" || cfg.Engine.NumStandbyReplicas != 1 || len(cfg.Engine.Pipelines) != 1 {
		t.Errorf("README's config example loaded as %+v", cfg.Engine)
	}
}
