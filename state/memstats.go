package state

import "github.com/linxGnu/grocksdb"

// MemoryStats is the RocksDB memory of a budget's databases, in the terms
// of Kafka Streams' RocksDB metrics (KIP-471): the shared block cache's
// usage and pinned usage, and per store the memtables, the table readers
// and the bytes compaction has yet to rewrite.
type MemoryStats struct {
	// BudgetBytes is the whole budget, rocksdb.block_cache_mb: the cache
	// that the memtables are charged to as well.
	BudgetBytes uint64
	// BlockCacheUsage is what the shared cache holds, the memtables'
	// charge included; BlockCachePinned the part of it in use by readers
	// and pinned index and filter blocks, which cannot be evicted.
	BlockCacheUsage, BlockCachePinned uint64
	// Stores sums each store over the open databases, by store name.
	Stores map[string]StoreMemory
	// Databases is the number of open databases.
	Databases int
}

// StoreMemory is one store's RocksDB memory, summed over databases.
type StoreMemory struct {
	// MemtableBytes is rocksdb.cur-size-all-mem-tables: active, immutable
	// and pinned memtables.
	MemtableBytes uint64
	// TableReadersBytes is rocksdb.estimate-table-readers-mem: index and
	// filter blocks held outside the block cache.
	TableReadersBytes uint64
	// PendingCompactionBytes is rocksdb.estimate-pending-compaction-bytes.
	PendingCompactionBytes uint64
}

// The RocksDB properties of StoreMemory.
const (
	propMemtables         = "rocksdb.cur-size-all-mem-tables"
	propTableReaders      = "rocksdb.estimate-table-readers-mem"
	propPendingCompaction = "rocksdb.estimate-pending-compaction-bytes"
)

// track and untrack add and remove an open database for MemoryStats. A
// DB's column family handles change only under the budget's lock once it
// is tracked (ClearStore), so MemoryStats may read them from any goroutine.
func (b *Budget) track(db *DB) {
	b.mu.Lock()
	if b.dbs == nil {
		b.dbs = map[*DB]struct{}{}
	}
	b.dbs[db] = struct{}{}
	b.mu.Unlock()
}

func (b *Budget) untrack(db *DB) {
	b.mu.Lock()
	delete(b.dbs, db)
	b.mu.Unlock()
}

// MemoryStats returns the memory of the budget's cache and of every store
// of its open databases. It reads RocksDB properties, which RocksDB keeps
// in memory: cheap enough for every scrape, and safe beside the databases'
// own goroutines.
func (b *Budget) MemoryStats() MemoryStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	ms := MemoryStats{BudgetBytes: uint64(b.cfg.BlockCacheMB) << 20, Stores: map[string]StoreMemory{}, Databases: len(b.dbs)}
	if !b.closed {
		ms.BlockCacheUsage, ms.BlockCachePinned = b.cache.GetUsage(), b.cache.GetPinnedUsage()
	}
	for db := range b.dbs {
		for id, cf := range db.cfs {
			if cf == nil {
				continue
			}
			s := ms.Stores[db.names[id]]
			s.MemtableBytes += intProperty(db, cf, propMemtables)
			s.TableReadersBytes += intProperty(db, cf, propTableReaders)
			s.PendingCompactionBytes += intProperty(db, cf, propPendingCompaction)
			ms.Stores[db.names[id]] = s
		}
	}
	return ms
}

func intProperty(db *DB, cf *grocksdb.ColumnFamilyHandle, name string) uint64 {
	v, _ := db.rdb.GetIntPropertyCF(name, cf)
	return v
}
