package engine_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/flowstate/flowstate/engine"
	"github.com/flowstate/flowstate/host"
	"github.com/flowstate/flowstate/internal/field"
	"github.com/flowstate/flowstate/restore"
	"github.com/flowstate/flowstate/state"
)

// TestConfigDefaults checks that EnsureDefaults fills the nil pointer
// fields and keeps an explicit 0 in them: 0 means no warm-ups and only
// caught-up copies, not the default.
func TestConfigDefaults(t *testing.T) {
	var cfg engine.Config
	cfg.EnsureDefaults()
	if got := *cfg.MaxWarmupReplicas; got != engine.DefaultMaxWarmupReplicas {
		t.Errorf("default max_warmup_replicas = %d", got)
	}
	if got := *cfg.AcceptableRecoveryLag; got != engine.DefaultAcceptableRecoveryLag {
		t.Errorf("default acceptable_recovery_lag = %d", got)
	}
	cfg = engine.Config{MaxWarmupReplicas: new(0), AcceptableRecoveryLag: new(int64(0))}
	cfg.EnsureDefaults()
	if *cfg.MaxWarmupReplicas != 0 || *cfg.AcceptableRecoveryLag != 0 {
		t.Errorf("explicit 0 replaced: max_warmup_replicas %d, acceptable_recovery_lag %d",
			*cfg.MaxWarmupReplicas, *cfg.AcceptableRecoveryLag)
	}
}

// TestConfigValidateKeys checks that every error of Validate is a
// *field.Error named by its full config key, the packages' errors nested
// under the key of the field that holds them.
func TestConfigValidateKeys(t *testing.T) {
	cfg := engine.Config{
		Brokers:               []string{"b:1"},
		AcceptableRecoveryLag: new(int64(-1)),
		RocksDB:               state.BudgetConfig{MaxOpenFiles: -2, Stores: map[string]state.StoreOptions{"s": {Compaction: "tiered"}}},
		Restore:               restore.Settings{MaxParallel: -1, OnTruncated: "ignore"},
		Pipelines: []engine.Pipeline{{
			Name: "p", Inputs: []string{"in"}, OnError: "retry",
			Limits: host.Limits{MemoryMB: 5000},
		}},
	}
	cfg.EnsureDefaults()
	err := cfg.Validate()
	var keys []string
	for _, e := range field.Errors(err) {
		keys = append(keys, e.Key)
	}
	want := []string{
		"application_id",
		"acceptable_recovery_lag",
		"rocksdb.max_open_files",
		"rocksdb.stores.s.compaction",
		"restore.max_parallel",
		"restore.on_truncated",
		"pipelines.p.module",
		"pipelines.p.limits.memory_mb",
		"pipelines.p.on_error",
	}
	if !slices.Equal(keys, want) {
		t.Errorf("keys:\n%q\nwant\n%q\nerror:\n%v", keys, want, err)
	}
	if !errors.Is(err, state.ErrInvalidConfig) || !errors.Is(err, host.ErrInvalidLimits) {
		t.Errorf("Validate does not wrap the packages' sentinels: %v", err)
	}
}
