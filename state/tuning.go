package state

import (
	"fmt"
	"slices"
	"sort"

	"github.com/linxGnu/grocksdb"
)

// StoreOptions tune one store's column family. Empty fields take the
// process-wide values of BudgetConfig, and those RocksDB's defaults.
type StoreOptions struct {
	// Compaction is the compaction style: "level" (RocksDB's default) or
	// "universal", which rewrites data less often (less write
	// amplification, for stores overwritten at a high rate) at the cost of
	// up to twice the disk space. Kafka Streams: Options.setCompactionStyle
	// in a RocksDBConfigSetter.
	Compaction string
	// Compression of the store's SST files: "snappy" (RocksDB's default),
	// "lz4", "zstd" (smaller, more CPU) or "none". Kafka Streams:
	// Options.setCompressionType in a RocksDBConfigSetter.
	Compression string
}

var (
	compactionStyles = map[string]grocksdb.CompactionStyle{
		"level":     grocksdb.LevelCompactionStyle,
		"universal": grocksdb.UniversalCompactionStyle,
	}
	compressionTypes = map[string]grocksdb.CompressionType{
		"none":   grocksdb.NoCompression,
		"snappy": grocksdb.SnappyCompression,
		"lz4":    grocksdb.LZ4Compression,
		"zstd":   grocksdb.ZSTDCompression,
	}
)

// validate reports the fields that name no style or type; at prefixes the
// errors (a config key).
func (o StoreOptions) validate(at string) []error {
	var errs []error
	if _, ok := compactionStyles[o.Compaction]; o.Compaction != "" && !ok {
		errs = append(errs, fmt.Errorf("%w: %scompaction %q is not %s", ErrInvalidConfig, at, o.Compaction, oneOf(compactionStyles)))
	}
	if _, ok := compressionTypes[o.Compression]; o.Compression != "" && !ok {
		errs = append(errs, fmt.Errorf("%w: %scompression %q is not %s", ErrInvalidConfig, at, o.Compression, oneOf(compressionTypes)))
	}
	return errs
}

func oneOf[V any](m map[string]V) string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return "one of " + fmt.Sprint(names)
}

// over returns o with its empty fields taken from base.
func (o StoreOptions) over(base StoreOptions) StoreOptions {
	if o.Compaction == "" {
		o.Compaction = base.Compaction
	}
	if o.Compression == "" {
		o.Compression = base.Compression
	}
	return o
}

// storeOptions returns the options of the named store's column family: a
// copy of base, which keeps the shared cache and write buffer manager,
// tuned by the budget's store options. It returns base itself when nothing
// is tuned, so that the caller destroys only what is not base.
func (b *Budget) storeOptions(base *grocksdb.Options, store string) *grocksdb.Options {
	o := b.cfg.Stores[store].over(StoreOptions{Compaction: b.cfg.Compaction, Compression: b.cfg.Compression})
	if o == (StoreOptions{}) {
		return base
	}
	opts := base.Clone()
	if o.Compaction != "" {
		opts.SetCompactionStyle(compactionStyles[o.Compaction])
	}
	if o.Compression != "" {
		opts.SetCompression(compressionTypes[o.Compression])
	}
	return opts
}

// validateTuning checks the store options of c, an error per bad field.
func (c BudgetConfig) validateTuning() []error {
	errs := StoreOptions{Compaction: c.Compaction, Compression: c.Compression}.validate("")
	names := make([]string, 0, len(c.Stores))
	for name := range c.Stores {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		errs = append(errs, c.Stores[name].validate("stores."+name+".")...)
	}
	if c.MaxBackgroundJobs < 1 {
		errs = append(errs, fmt.Errorf("%w: max_background_jobs %d, want > 0", ErrInvalidConfig, c.MaxBackgroundJobs))
	}
	return errs
}
