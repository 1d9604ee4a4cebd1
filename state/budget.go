package state

import (
	"fmt"
	"sync"

	"github.com/linxGnu/grocksdb"

	"github.com/flowstate/flowstate/internal/field"
)

// BudgetConfig holds the RocksDB settings shared by every task database of
// a process: the memory they share, their background work, and how each
// store is tuned. Zero fields take the defaults of EnsureDefaults.
type BudgetConfig struct {
	// BlockCacheMB is the size of the one LRU block cache shared by all
	// databases, in MiB; memtables are charged to it too. Default 64.
	// Replaces a per-store RocksDBConfigSetter block cache in Kafka Streams.
	BlockCacheMB int `koanf:"block_cache_mb"`
	// WriteBufferMB caps the memtables of all databases together, in MiB;
	// when it is reached the largest memtables are flushed. Default 64.
	// Replaces write_buffer_size x max_write_buffer_number per store.
	WriteBufferMB int `koanf:"write_buffer_mb"`
	// MaxOpenFiles limits the open SST files of each database; -1 keeps
	// every file open. Default -1 (RocksDB's max_open_files).
	MaxOpenFiles int `koanf:"max_open_files"`
	// MaxBackgroundJobs bounds the flushes and compactions each database
	// runs at once; they run on RocksDB's process-wide thread pools, which
	// grow to the largest value asked for, so this is also about the
	// process's background threads. Default 2. Kafka Streams: a
	// RocksDBConfigSetter's setMaxBackgroundJobs.
	MaxBackgroundJobs int `koanf:"max_background_jobs"`
	// Compaction is the default compaction style of every store (see
	// StoreOptions.Compaction); empty keeps RocksDB's, level.
	Compaction string `koanf:"compaction"`
	// Compression is the default compression of every store (see
	// StoreOptions.Compression); empty keeps RocksDB's, snappy.
	Compression string `koanf:"compression"`
	// Stores tunes single stores by store name, over the defaults above.
	Stores map[string]StoreOptions `koanf:"stores"`
}

// EnsureDefaults fills zero fields with their defaults.
func (c *BudgetConfig) EnsureDefaults() {
	if c.BlockCacheMB == 0 {
		c.BlockCacheMB = 64
	}
	if c.WriteBufferMB == 0 {
		c.WriteBufferMB = 64
	}
	if c.MaxOpenFiles == 0 {
		c.MaxOpenFiles = -1
	}
	if c.MaxBackgroundJobs == 0 {
		c.MaxBackgroundJobs = 2
	}
}

// Validate reports every field out of range, one *field.Error per field
// keyed by its config key (block_cache_mb, stores.counts.compression), each
// wrapping ErrInvalidConfig. Call it after EnsureDefaults: a zero size is
// invalid.
func (c BudgetConfig) Validate() error {
	var errs field.List
	bad := func(key, format string, args ...any) {
		errs = append(errs, &field.Error{Key: key, Msg: fmt.Sprintf(format, args...), Err: ErrInvalidConfig})
	}
	if c.BlockCacheMB <= 0 {
		bad("block_cache_mb", "%d is not positive", c.BlockCacheMB)
	}
	if c.WriteBufferMB <= 0 {
		bad("write_buffer_mb", "%d is not positive", c.WriteBufferMB)
	}
	if c.MaxOpenFiles < -1 || c.MaxOpenFiles == 0 {
		bad("max_open_files", "%d is not -1 (no limit) or positive", c.MaxOpenFiles)
	}
	if c.MaxBackgroundJobs < 1 {
		bad("max_background_jobs", "%d is not positive", c.MaxBackgroundJobs)
	}
	c.validateTuning(bad)
	return errs.Err()
}

// Budget is the RocksDB memory shared by the databases opened with it: one
// block cache and one write buffer manager charged to that cache, so the
// memory of all tasks together stays near BlockCacheMB however many tasks a
// process runs. A Budget is safe for concurrent use.
type Budget struct {
	cfg BudgetConfig

	mu     sync.Mutex
	cache  *grocksdb.Cache
	wbm    *writeBufferManager
	closed bool
	dbs    map[*DB]struct{} // the open databases, for MemoryStats (memstats.go)
}

// NewBudget returns a Budget sized by cfg after EnsureDefaults.
func NewBudget(cfg BudgetConfig) (*Budget, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cache := grocksdb.NewLRUCache(uint64(cfg.BlockCacheMB) << 20)
	wbm, err := newWriteBufferManager(uint64(cfg.WriteBufferMB)<<20, cache)
	if err != nil {
		cache.Destroy()
		return nil, err
	}
	return &Budget{cfg: cfg, cache: cache, wbm: wbm}, nil
}

// Close releases the budget's references. Databases already opened with it
// keep theirs and go on sharing the cache and the write buffer manager until
// they close; opening a new one fails with ErrClosed. Close is idempotent.
func (b *Budget) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	b.wbm.destroy()
	b.cache.Destroy()
}

// apply sets the shared cache, the write buffer manager and the file limit
// on opts.
func (b *Budget) apply(opts *grocksdb.Options) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return fmt.Errorf("budget: %w", ErrClosed)
	}
	bbto := grocksdb.NewDefaultBlockBasedTableOptions()
	bbto.SetBlockCache(b.cache)
	// A processor reads a key per record, most of them point lookups of
	// keys written since the last flush or absent: a full bloom filter per
	// SST file answers most of those without reading a data block. Index
	// and filter blocks live in the shared cache, so the budget covers
	// them; L0's stay pinned, as they are read by every lookup.
	bbto.SetFilterPolicy(grocksdb.NewBloomFilterFull(10))
	bbto.SetCacheIndexAndFilterBlocks(true)
	bbto.SetPinL0FilterAndIndexBlocksInCache(true)
	// RocksDB copies the table options into the table factory, which holds
	// its own reference to the cache.
	opts.SetBlockBasedTableFactory(bbto)
	bbto.Destroy()
	if err := b.wbm.setOn(opts); err != nil {
		return err
	}
	opts.SetMaxOpenFiles(b.cfg.MaxOpenFiles)
	opts.SetMaxBackgroundJobs(b.cfg.MaxBackgroundJobs)
	return nil
}

// usage returns the bytes held in the block cache (including the memtable
// charge) and the memtable bytes charged to the write buffer manager.
func (b *Budget) usage() (cache, memtables uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, 0
	}
	return b.cache.GetUsage(), b.wbm.memoryUsage()
}

// Usage is the memory a Budget's databases hold now.
type Usage struct {
	// CacheBytes is the block cache's usage, which includes the memtables'
	// charge (the write buffer manager reserves their size in the cache).
	CacheBytes uint64
	// MemtableBytes is the memtable memory of all the databases.
	MemtableBytes uint64
}

// Usage returns what the budget's cache and memtables hold now; zero after
// Close.
func (b *Budget) Usage() Usage {
	c, m := b.usage()
	return Usage{CacheBytes: c, MemtableBytes: m}
}

// Config returns the budget's configuration, defaults applied.
func (b *Budget) Config() BudgetConfig { return b.cfg }
