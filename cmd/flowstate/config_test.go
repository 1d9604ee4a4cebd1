package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowstate/flowstate/cmd/flowstate/internal/config"
)

// clearEnv removes every FLOWSTATE_ variable for the test, restoring them
// afterwards, so that the caller's environment does not leak into configs.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, config.EnvPrefix) {
			t.Setenv(name, "") // restores the old value at cleanup
			os.Unsetenv(name)
		}
	}
}

// writeFile writes content to name in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfigFlags loads configs with the flags of `flowstate dev`: the flags
// that set keys override the file and the environment, the others and
// those not given leave them alone.
func TestConfigFlags(t *testing.T) {
	module := writeFile(t, t.TempDir(), "wordcount.wasm", "\x00asm")
	base := "application_id: wordcount\nbrokers: [localhost:9092]\npipelines: {wordcount: {module: " + module + ", inputs: [sentences]}}\n"
	tests := []struct {
		name  string
		yaml  string
		env   map[string]string
		flags []string
		want  func(t *testing.T, c *config.Config)
		err   string // a substring of the error; none means success
	}{
		{
			name:  "flag override",
			yaml:  base + "state_dir: from-file\nlog_level: warn\n",
			env:   map[string]string{"FLOWSTATE_STATE_DIR": "from-env"},
			flags: []string{"--brokers", "f:1,g:2", "--state-dir", "from-flag", "--log-level", "debug", "--port", "9999", "--partitions", "3"},
			want: func(t *testing.T, c *config.Config) {
				check(t, "brokers", strings.Join(c.Engine.Brokers, ","), "f:1,g:2")
				check(t, "state_dir", c.Engine.StateDir, "from-flag")
				check(t, "log_level", c.LogLevel, slog.LevelDebug)
				check(t, "dev.port", c.Dev.Port, 9999)
				check(t, "dev.partitions", c.Dev.Partitions, 3)
			},
		},
		{
			name:  "unset flags keep the file",
			yaml:  base + "state_dir: from-file\n",
			flags: []string{"--print", "x"},
			want: func(t *testing.T, c *config.Config) {
				check(t, "state_dir", c.Engine.StateDir, "from-file")
				check(t, "brokers", strings.Join(c.Engine.Brokers, ","), "localhost:9092")
			},
		},
		{
			name:  "bad flag value",
			yaml:  base,
			flags: []string{"--log-level", "chatty"},
			err:   `log_level: "chatty"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			path := writeFile(t, t.TempDir(), "flowstate.yaml", tt.yaml)
			fs, _ := newDevFlags()
			if err := fs.Parse(tt.flags); err != nil {
				t.Fatal(err)
			}
			c, err := loadConfig(path, fs, false)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("loadConfig = %v, want an error with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("loadConfig: %v", err)
			}
			tt.want(t, c)
		})
	}
}

func check[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}
