package state

import (
	"bytes"
	"fmt"

	"github.com/linxGnu/grocksdb"
)

// Iterator walks a key range of one store in ascending key order, merging
// the write buffer over RocksDB: a buffered value replaces the stored one, a
// buffered Delete hides it. RocksDB is read as of the Range call (an
// iterator pins its own consistent view). Puts and Deletes made while an
// Iterator is open may or may not be seen by it, but each key is returned
// at most once and in order. An Iterator must be closed before the next
// Commit or Discard, and is released by the DB's Close.
type Iterator struct {
	db    *DB
	sb    *storeBuffer
	start []byte // nil: unbounded
	end   []byte // nil: unbounded

	// Buffer side: entries are fetched from the B-tree in chunks, so a
	// Range costs O(log n) plus the keys actually visited.
	chunk   [64]*entry
	n, ci   int
	last    []byte // key of the last entry fetched; the next chunk starts after it
	bufDone bool
	probe   entry

	// RocksDB side.
	ro *grocksdb.ReadOptions
	ri *grocksdb.Iterator

	key, value      []byte
	advBuf, advRock bool // which sides the current item came from
	err             error
	closed          bool
}

// Range returns an Iterator over the keys k of store with start <= k < end.
// A nil or empty start or end leaves that side unbounded. The bounds are
// copied.
func (db *DB) Range(store int, start, end []byte) (*Iterator, error) {
	if err := db.check(store); err != nil {
		return nil, err
	}
	it := &Iterator{db: db, sb: &db.buf.stores[store]}
	if len(start) > 0 {
		it.start = bytes.Clone(start)
	}
	if len(end) > 0 {
		it.end = bytes.Clone(end)
	}
	it.ro = grocksdb.NewDefaultReadOptions()
	// The read options keep references to the bounds for as long as they
	// live; nobody else holds it.start and it.end.
	if it.start != nil {
		it.ro.SetIterateLowerBound(it.start)
	}
	if it.end != nil {
		it.ro.SetIterateUpperBound(it.end)
	}
	it.ri = db.rdb.NewIteratorCF(it.ro, db.cfs[store])
	if it.start != nil {
		it.ri.Seek(it.start)
	} else {
		it.ri.SeekToFirst()
	}
	db.iters[it] = struct{}{}
	return it, nil
}

// Next moves to the next key and reports whether there is one. It returns
// false at the end of the range, on error (see Err) and after Close.
func (it *Iterator) Next() bool {
	if it.closed || it.err != nil {
		return false
	}
	if it.advRock {
		it.ri.Next()
	}
	if it.advBuf {
		it.ci++
	}
	it.advBuf, it.advRock = false, false
	it.key, it.value = nil, nil
	for {
		e := it.bufHead()
		rValid := it.ri.Valid()
		var rKey []byte
		if rValid {
			rKey = it.ri.Key().Data()
		}
		cmp := -1 // buffer side first
		switch {
		case e == nil && !rValid:
			if err := it.ri.Err(); err != nil {
				it.err = fmt.Errorf("range: %w", err)
			}
			return false
		case e == nil:
			cmp = 1
		case rValid:
			cmp = bytes.Compare(e.key, rKey)
		}
		if cmp > 0 {
			it.key, it.value, it.advRock = rKey, it.ri.Value().Data(), true
			return true
		}
		if e.del {
			it.ci++
			if cmp == 0 {
				it.ri.Next()
			}
			continue
		}
		it.key, it.value, it.advBuf, it.advRock = e.key, e.value, true, cmp == 0
		return true
	}
}

// bufHead returns the next live buffered entry in range, or nil.
func (it *Iterator) bufHead() *entry {
	for {
		if it.ci < it.n {
			if e := it.chunk[it.ci]; !e.dead {
				return e
			}
			it.ci++
			continue
		}
		if it.bufDone {
			return nil
		}
		it.fill()
	}
}

// fill fetches the next chunk of buffered entries in range.
func (it *Iterator) fill() {
	clear(it.chunk[:it.n])
	it.n, it.ci = 0, 0
	after := it.last != nil
	if after {
		it.probe.key = it.last
	} else {
		it.probe.key = it.start
	}
	it.sb.tree.AscendGreaterOrEqual(&it.probe, func(e *entry) bool {
		if after {
			after = false
			if bytes.Equal(e.key, it.last) {
				return true
			}
		}
		if it.end != nil && bytes.Compare(e.key, it.end) >= 0 {
			return false
		}
		it.chunk[it.n] = e
		it.n++
		return it.n < len(it.chunk)
	})
	if it.n < len(it.chunk) {
		it.bufDone = true
	}
	if it.n > 0 {
		it.last = it.chunk[it.n-1].key
	}
}

// Key returns the current key. It must not be modified and is valid until
// the next call to Next or Close.
func (it *Iterator) Key() []byte { return it.key }

// Value returns the current value. It must not be modified and is valid
// until the next call to Next or Close, or the next write to the DB.
func (it *Iterator) Value() []byte { return it.value }

// Err returns the error that ended the iteration, if any: ErrClosed when the
// DB was closed under the Iterator.
func (it *Iterator) Err() error { return it.err }

// Close releases the RocksDB iterator and returns Err. It is idempotent.
func (it *Iterator) Close() error {
	it.release(nil)
	return it.err
}

// release frees the RocksDB side; err, if not nil, becomes Err.
func (it *Iterator) release(err error) {
	if it.closed {
		return
	}
	it.closed = true
	if err != nil && it.err == nil {
		it.err = err
	}
	it.ri.Close()
	it.ro.Destroy()
	delete(it.db.iters, it)
	it.ri, it.ro, it.sb = nil, nil, nil
	clear(it.chunk[:])
	it.key, it.value, it.last = nil, nil, nil
}
