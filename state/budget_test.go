package state

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/flowstate/flowstate/internal/field"
	"github.com/flowstate/flowstate/internal/poll"
)

func TestBudgetConfig(t *testing.T) {
	tests := []struct {
		name  string
		cfg   BudgetConfig
		want  BudgetConfig
		valid bool
	}{
		{name: "defaults", want: BudgetConfig{BlockCacheMB: 64, WriteBufferMB: 64, MaxOpenFiles: -1, MaxBackgroundJobs: 2}, valid: true},
		{name: "set", cfg: BudgetConfig{BlockCacheMB: 8, WriteBufferMB: 4, MaxOpenFiles: 100, MaxBackgroundJobs: 4}, want: BudgetConfig{BlockCacheMB: 8, WriteBufferMB: 4, MaxOpenFiles: 100, MaxBackgroundJobs: 4}, valid: true},
		{name: "negative cache", cfg: BudgetConfig{BlockCacheMB: -1}, want: BudgetConfig{BlockCacheMB: -1, WriteBufferMB: 64, MaxOpenFiles: -1, MaxBackgroundJobs: 2}},
		{name: "negative write buffer", cfg: BudgetConfig{WriteBufferMB: -1}, want: BudgetConfig{BlockCacheMB: 64, WriteBufferMB: -1, MaxOpenFiles: -1, MaxBackgroundJobs: 2}},
		{name: "bad max open files", cfg: BudgetConfig{MaxOpenFiles: -2}, want: BudgetConfig{BlockCacheMB: 64, WriteBufferMB: 64, MaxOpenFiles: -2, MaxBackgroundJobs: 2}},
		{name: "bad background jobs", cfg: BudgetConfig{MaxBackgroundJobs: -1}, want: BudgetConfig{BlockCacheMB: 64, WriteBufferMB: 64, MaxOpenFiles: -1, MaxBackgroundJobs: -1}},
		{
			name:  "store tuning",
			cfg:   BudgetConfig{Compression: "lz4", Stores: map[string]StoreOptions{"s": {Compaction: "universal", Compression: "zstd"}}},
			want:  BudgetConfig{BlockCacheMB: 64, WriteBufferMB: 64, MaxOpenFiles: -1, MaxBackgroundJobs: 2, Compression: "lz4", Stores: map[string]StoreOptions{"s": {Compaction: "universal", Compression: "zstd"}}},
			valid: true,
		},
		{
			name: "bad compaction",
			cfg:  BudgetConfig{Compaction: "tiered"},
			want: BudgetConfig{BlockCacheMB: 64, WriteBufferMB: 64, MaxOpenFiles: -1, MaxBackgroundJobs: 2, Compaction: "tiered"},
		},
		{
			name: "bad store compression",
			cfg:  BudgetConfig{Stores: map[string]StoreOptions{"s": {Compression: "gzip"}}},
			want: BudgetConfig{BlockCacheMB: 64, WriteBufferMB: 64, MaxOpenFiles: -1, MaxBackgroundJobs: 2, Stores: map[string]StoreOptions{"s": {Compression: "gzip"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.EnsureDefaults()
			if !reflect.DeepEqual(cfg, tt.want) {
				t.Errorf("EnsureDefaults() = %+v, want %+v", cfg, tt.want)
			}
			err := cfg.Validate()
			if tt.valid != (err == nil) {
				t.Errorf("Validate() = %v, want valid %v", err, tt.valid)
			}
			if err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("Validate() = %v, want ErrInvalidConfig", err)
			}
			b, err := NewBudget(tt.cfg)
			if tt.valid != (err == nil) {
				t.Fatalf("NewBudget() = %v, want valid %v", err, tt.valid)
			}
			if b != nil {
				b.Close()
				b.Close()
			}
		})
	}
}

// TestBudgetTenDBs opens ten databases under one budget and checks that the
// memtables of all of them are charged to the one write buffer manager, and
// through it to the one block cache.
func TestBudgetTenDBs(t *testing.T) {
	budget, err := NewBudget(BudgetConfig{BlockCacheMB: 64, WriteBufferMB: 32})
	if err != nil {
		t.Fatal(err)
	}
	defer budget.Close()
	_, before := budget.usage()

	const dbs, perDB = 10, 256 << 10 // below the budget in total, so nothing is flushed
	value := make([]byte, 1024)
	var open []*DB
	for i := range dbs {
		db, err := Open(Config{Dir: filepath.Join(t.TempDir(), fmt.Sprint(i)), Stores: []string{"s", "t"}, Budget: budget})
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, db)
		t.Cleanup(func() { db.Close() })
		for k := range perDB / len(value) {
			if err := db.Put(k%2, fmt.Appendf(nil, "key-%06d", k), value); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Commit(Offsets{}); err != nil {
			t.Fatal(err)
		}
	}

	cache, memtables := budget.usage()
	t.Logf("before %d, memtables %d, cache %d", before, memtables, cache)
	if memtables-before < dbs*perDB {
		t.Errorf("write buffer manager holds %d memtable bytes, want at least %d from %d databases", memtables-before, dbs*perDB, dbs)
	}
	if cache < memtables {
		t.Errorf("block cache usage %d is less than the %d memtable bytes charged to it", cache, memtables)
	}

	// Closing the budget leaves open databases working; new ones fail.
	budget.Close()
	if err := open[0].Put(0, []byte("after"), []byte("close")); err != nil {
		t.Fatal(err)
	}
	if err := open[0].Commit(Offsets{}); err != nil {
		t.Fatalf("Commit after Budget.Close: %v", err)
	}
	_, err = Open(Config{Dir: t.TempDir(), Budget: budget})
	if !errors.Is(err, ErrClosed) {
		t.Errorf("Open with a closed budget: %v, want ErrClosed", err)
	}
}

// TestBudgetFlushes writes more to ten databases than their shared write
// buffer allows and waits until the write buffer manager has made them flush.
func TestBudgetFlushes(t *testing.T) {
	budget, err := NewBudget(BudgetConfig{BlockCacheMB: 64, WriteBufferMB: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer budget.Close()
	const dbs, perDB = 10, 2 << 20
	value := make([]byte, 1024)
	var open []*DB
	for i := range dbs {
		db, err := Open(Config{Dir: filepath.Join(t.TempDir(), fmt.Sprint(i)), Stores: []string{"s", "t"}, Budget: budget})
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, db)
		t.Cleanup(func() { db.Close() })
		for c := range 20 {
			for k := range perDB / len(value) / 20 {
				if err := db.Put(k%2, fmt.Appendf(nil, "key-%02d-%06d", c, k), value); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.Commit(Offsets{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Each database alone is far below its 64 MiB write_buffer_size, so
	// only the shared limit flushes. Without it the memtables would hold all
	// 20 MiB; idle databases keep a floor of one arena block per written
	// column family.
	const limit = dbs * perDB / 2
	var memtables uint64
	var files int
	poll.Until(t, 10*time.Second, func() error {
		_, memtables = budget.usage()
		files = 0
		for _, db := range open {
			files += len(db.rdb.GetLiveFilesMetaData())
		}
		if memtables == 0 || memtables >= limit || files == 0 {
			return fmt.Errorf("memtables %d bytes (want 1 to %d), %d SST files (want some)", memtables, limit-1, files)
		}
		return nil
	})
	t.Logf("memtables %d bytes, %d SST files after writing %d bytes", memtables, files, dbs*perDB)
}

// TestBudgetConfigValidateKeys checks that Validate names each bad field by
// its config key, store tunings under stores.<name>, each error wrapping
// ErrInvalidConfig.
func TestBudgetConfigValidateKeys(t *testing.T) {
	cfg := BudgetConfig{
		BlockCacheMB: -1, WriteBufferMB: -1, MaxOpenFiles: 0, MaxBackgroundJobs: -1,
		Compaction: "tiered", Compression: "gzip",
		Stores: map[string]StoreOptions{"b": {Compression: "brotli"}, "a": {Compaction: "fifo"}},
	}
	err := cfg.Validate()
	var keys []string
	for _, e := range field.Errors(err) {
		if !errors.Is(e, ErrInvalidConfig) {
			t.Errorf("%v does not wrap ErrInvalidConfig", e)
		}
		keys = append(keys, e.Key)
	}
	want := []string{
		"block_cache_mb", "write_buffer_mb", "max_open_files", "max_background_jobs",
		"compaction", "compression", "stores.a.compaction", "stores.b.compression",
	}
	if !slices.Equal(keys, want) {
		t.Errorf("keys %q, want %q; error:\n%v", keys, want, err)
	}
}
