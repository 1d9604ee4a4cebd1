package host

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestCompileRefuses(t *testing.T) {
	rt := newRuntime(t, RuntimeConfig{})
	tests := []struct {
		name string
		wasm func(t *testing.T) []byte
		lim  Limits
		want []error  // each must match with errors.Is
		text []string // each must appear in the message
	}{
		{
			name: "not wasm",
			wasm: func(*testing.T) []byte { return []byte("#!/bin/sh\necho hi\n") },
			want: []error{ErrNotWasm},
		},
		{
			name: "empty",
			wasm: func(*testing.T) []byte { return nil },
			want: []error{ErrNotWasm},
		},
		{
			name: "invalid wasm",
			wasm: func(*testing.T) []byte { return append([]byte{0, 'a', 's', 'm', 1, 0, 0, 0}, 0xff, 0x00) },
			want: []error{ErrInvalidModule},
		},
		{
			name: "missing export",
			wasm: func(t *testing.T) []byte { return wasmOf(t, "missing_export") },
			want: []error{ErrMissingExport},
			text: []string{"flowstate_process (i32, i32) -> (i32)"},
		},
		{
			name: "wrong export signature",
			wasm: func(t *testing.T) []byte { return wasmOf(t, "bad_signature") },
			want: []error{ErrExportSignature},
			text: []string{"flowstate_alloc is (i64) -> (i32), want (i32) -> (i32)", "flowstate_process is (i32, i32) -> ()"},
		},
		{
			name: "memory not exported",
			wasm: func(t *testing.T) []byte { return wasmOf(t, "no_memory") },
			want: []error{ErrMissingExport},
			text: []string{`memory "memory"`},
		},
		{
			name: "unknown imports",
			wasm: func(t *testing.T) []byte { return wasmOf(t, "unknown_import") },
			want: []error{ErrUnknownImport},
			text: []string{"env.now", "flowstate.kv_scan", "memory env.mem"},
		},
		{
			name: "wrong import signature",
			wasm: func(t *testing.T) []byte { return wasmOf(t, "import_signature") },
			want: []error{ErrImportSignature},
			text: []string{"flowstate.kv_get is (i32) -> (i32), want (i32, i32, i32, i32, i32) -> (i32)", "wasi_snapshot_preview1.fd_write"},
		},
		{
			name: "memory minimum over the limit",
			wasm: func(t *testing.T) []byte { return wasmOf(t, "big_memory") },
			lim:  Limits{MemoryMB: 16},
			want: []error{ErrInvalidModule},
			text: []string{"limit"},
		},
		{
			name: "invalid limits",
			wasm: func(t *testing.T) []byte { return wasmOf(t, "counter") },
			lim:  Limits{MemoryMB: 5000},
			want: []error{ErrInvalidLimits},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := rt.Compile(t.Context(), "guest-"+strings.ReplaceAll(tt.name, " ", "-"), tt.wasm(t), tt.lim)
			if err == nil {
				m.Close(t.Context())
				t.Fatal("Compile succeeded")
			}
			t.Log(err)
			for _, want := range tt.want {
				if !errors.Is(err, want) {
					t.Errorf("error does not match %v", want)
				}
			}
			for _, s := range append(tt.text, "guest-"+strings.ReplaceAll(tt.name, " ", "-")) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error does not contain %q", s)
				}
			}
		})
	}
}

func TestCompileAccepts(t *testing.T) {
	rt := newRuntime(t, RuntimeConfig{})
	tests := []struct {
		name string
		lim  Limits
	}{
		{name: "probe"},
		{name: "counter", lim: Limits{MemoryMB: 1}},
		{name: "big_memory", lim: Limits{MemoryMB: 32}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := compile(t, rt, tt.name, tt.lim)
			if m.Name() != tt.name || m.Limits().CallTimeout != DefaultCallTimeout {
				t.Fatalf("Name %q, Limits %+v", m.Name(), m.Limits())
			}
			if err := m.Close(t.Context()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestInstantiateRefuses(t *testing.T) {
	rt := newRuntime(t, RuntimeConfig{})
	db := openDB(t, "counts")
	tests := []struct {
		name   string
		module string
		cfg    InstanceConfig
		want   error
		text   []string
	}{
		{name: "abi version", module: "version2", cfg: InstanceConfig{DB: db}, want: ErrABIVersion,
			text: []string{"flowstate_abi_version returned 2, the host supports 1", "checked at instantiation"}},
		{name: "initialize traps", module: "init_trap", cfg: InstanceConfig{DB: db}, want: ErrTrap,
			text: []string{"_initialize", "unreachable"}},
		{name: "no db", module: "counter", cfg: InstanceConfig{}, want: ErrInvalidConfig},
		{name: "unknown store", module: "counter", cfg: InstanceConfig{DB: db, Stores: []string{"nope"}}, want: ErrInvalidConfig,
			text: []string{`"nope"`}},
		{name: "duplicate topic", module: "counter", cfg: InstanceConfig{DB: db, Topics: []string{"a", "a"}}, want: ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := compile(t, rt, tt.module, Limits{})
			i, err := m.Instantiate(t.Context(), tt.cfg)
			if err == nil {
				i.Close(t.Context())
				t.Fatal("Instantiate succeeded")
			}
			t.Log(err)
			if !errors.Is(err, tt.want) {
				t.Errorf("error does not match %v", tt.want)
			}
			for _, s := range append(tt.text, tt.module) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error does not contain %q", s)
				}
			}
		})
	}
}

func TestCompilationCacheDir(t *testing.T) {
	dir := t.TempDir()
	wasm := wasmOf(t, "counter")
	for run := range 2 {
		rt, err := NewRuntime(t.Context(), RuntimeConfig{CacheDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rt.Compile(t.Context(), "counter", wasm, Limits{}); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		if err := rt.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := rt.Close(t.Context()); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		entries, err := os.ReadDir(dir)
		if err != nil || len(entries) == 0 {
			t.Fatalf("run %d: cache dir has %d entries, %v", run, len(entries), err)
		}
	}
}

func TestClosedRuntime(t *testing.T) {
	rt, err := NewRuntime(t.Context(), RuntimeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	rt.Close(t.Context())
	if _, err := rt.Compile(t.Context(), "counter", wasmOf(t, "counter"), Limits{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Compile after Close: %v", err)
	}
}
