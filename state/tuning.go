package state

import (
	"fmt"
	"slices"
	"sort"

	"github.com/linxGnu/grocksdb"

	"github.com/flowstate/flowstate/internal/field"
)

// StoreOptions tune one store's column family. Empty fields take the
// process-wide values of BudgetConfig, and those RocksDB's defaults.
type StoreOptions struct {
	// Compaction is the compaction style: "level" (RocksDB's default) or
	// "universal", which rewrites data less often (less write
	// amplification, for stores overwritten at a high rate) at the cost of
	// up to twice the disk space. Kafka Streams: Options.setCompactionStyle
	// in a RocksDBConfigSetter.
	Compaction string `koanf:"compaction"`
	// Compression of the store's SST files: "snappy" (RocksDB's default),
	// "lz4", "zstd" (smaller, more CPU) or "none". Kafka Streams:
	// Options.setCompressionType in a RocksDBConfigSetter.
	Compression string `koanf:"compression"`
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

// validate reports the fields that name no style or type to bad, keyed
// under at (a config key, "" for the BudgetConfig defaults).
func (o StoreOptions) validate(at string, bad func(key, format string, args ...any)) {
	if _, ok := compactionStyles[o.Compaction]; o.Compaction != "" && !ok {
		bad(field.Join(at, "compaction"), "%q is not %s", o.Compaction, oneOf(compactionStyles))
	}
	if _, ok := compressionTypes[o.Compression]; o.Compression != "" && !ok {
		bad(field.Join(at, "compression"), "%q is not %s", o.Compression, oneOf(compressionTypes))
	}
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

// validateTuning reports the bad store options of c to bad, stores in
// name order.
func (c BudgetConfig) validateTuning(bad func(key, format string, args ...any)) {
	StoreOptions{Compaction: c.Compaction, Compression: c.Compression}.validate("", bad)
	names := make([]string, 0, len(c.Stores))
	for name := range c.Stores {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		c.Stores[name].validate("stores."+name, bad)
	}
}
