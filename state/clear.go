package state

import (
	"errors"
	"fmt"
	"time"
)

// ErrIteratorsOpen is returned by ClearStore while iterators are open.
var ErrIteratorsOpen = errors.New("state: iterators open")

// ClearStore deletes every key of store and its changelog offset, so that
// the store can be rebuilt from the start of its changelog. The store's
// column family is dropped and created anew, which costs the same whatever
// the store holds. Input offsets and the other stores are kept. The write
// buffer must be empty and no iterator open.
//
// The column family is dropped before the offset is deleted: a crash in
// between leaves an empty store whose offset is still the old one, which the
// caller detects again as it did the first time, never a full store with no
// offset, which would be replayed over stale keys.
func (db *DB) ClearStore(store int) error {
	if err := db.check(store); err != nil {
		return err
	}
	name := db.names[store]
	switch {
	case db.buf.count > 0:
		return fmt.Errorf("clear %s: %w", name, ErrBufferNotEmpty)
	case len(db.iters) > 0:
		return fmt.Errorf("clear %s: %w", name, ErrIteratorsOpen)
	}
	start := time.Now()
	old := db.cfs[store]
	if err := db.rdb.DropColumnFamily(old); err != nil {
		return fmt.Errorf("clear %s: drop column family: %w", name, err)
	}
	h, err := db.rdb.CreateColumnFamily(db.storeOpts[store], name)
	if err != nil {
		// The DB now lacks the column family until it is reopened (Open
		// creates missing ones); keep the dropped handle so Close frees it.
		return fmt.Errorf("clear %s: create column family: %w", name, err)
	}
	db.budget.mu.Lock() // MemoryStats reads the handles
	for i, o := range db.handles {
		if o == old {
			db.handles[i] = h // in place: __meta stays last, as Flush needs
		}
	}
	db.cfs[store] = h
	old.Destroy()
	db.budget.mu.Unlock()
	if err := db.rdb.DeleteCF(db.wo, db.meta, changelogKey(name)); err != nil {
		return fmt.Errorf("clear %s: delete offset: %w", name, err)
	}
	db.log.Info("store cleared", "store", name, "took", time.Since(start))
	return nil
}
