package state

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

// TestMemoryStats reads the KIP-471 memory of two databases under one
// budget, while a third goroutine writes, clears and closes them.
func TestMemoryStats(t *testing.T) {
	budget, err := NewBudget(BudgetConfig{BlockCacheMB: 16, WriteBufferMB: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer budget.Close()
	var dbs []*DB
	for i := range 2 {
		db, err := Open(Config{Dir: filepath.Join(t.TempDir(), fmt.Sprint(i)), Stores: []string{"a", "b"}, Budget: budget})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		dbs = append(dbs, db)
		value := make([]byte, 512)
		for k := range 200 {
			if err := db.Put(0, fmt.Appendf(nil, "key-%d", k), value); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Commit(Offsets{}); err != nil {
			t.Fatal(err)
		}
	}
	ms := budget.MemoryStats()
	if ms.Databases != 2 || ms.BudgetBytes != 16<<20 {
		t.Errorf("databases %d, budget %d; want 2, %d", ms.Databases, ms.BudgetBytes, 16<<20)
	}
	if a := ms.Stores["a"]; a.MemtableBytes < 2*200*512 {
		t.Errorf("store a memtables %d bytes, want at least %d", a.MemtableBytes, 2*200*512)
	}
	if b := ms.Stores["b"]; b.MemtableBytes >= ms.Stores["a"].MemtableBytes {
		t.Errorf("empty store b has %d memtable bytes, a %d", b.MemtableBytes, ms.Stores["a"].MemtableBytes)
	}
	if ms.BlockCacheUsage < ms.Stores["a"].MemtableBytes {
		t.Errorf("block cache usage %d below the memtables charged to it (%d)", ms.BlockCacheUsage, ms.Stores["a"].MemtableBytes)
	}

	// Readers beside the databases' own goroutine, which clears a store
	// (its column family handle changes) and closes the databases.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				budget.MemoryStats()
			}
		}
	})
	if err := dbs[0].Flush(); err != nil {
		t.Fatal(err)
	}
	if err := dbs[0].ClearStore(0); err != nil {
		t.Fatal(err)
	}
	for _, db := range dbs {
		db.Close()
	}
	close(stop)
	wg.Wait()
	if ms := budget.MemoryStats(); ms.Databases != 0 || len(ms.Stores) != 0 {
		t.Errorf("after close: %d databases, stores %v", ms.Databases, ms.Stores)
	}
}
