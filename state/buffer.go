package state

import (
	"bytes"
	"unsafe"

	"github.com/google/btree"
)

// buffer holds a task's uncommitted writes: per store a map for point
// lookups and a B-tree, over the same entries, for ordered ranges. Keys and
// values are copied into an arena that is dropped, not reused, at reset.
//
// Savepoints use an undo log. Writes are numbered by interval: a new
// interval starts at each Savepoint, and the first write to an entry in an
// interval logs the entry's previous state. Later writes to it in the same
// interval log nothing and may overwrite its value in place, since no
// savepoint can roll back to a state between them.
type buffer struct {
	stores []storeBuffer
	count  int // live entries in all stores

	undo  []undoRecord
	sps   []savepointMark // active savepoints, oldest first
	seq   uint64          // current interval
	nextS uint64          // last interval number handed out

	arena arena
	slab  []entry
}

type storeBuffer struct {
	keys map[string]*entry // keys alias entry.key
	tree *btree.BTreeG[*entry]
}

// entry is one buffered key. key never changes once set; value may be
// overwritten in place (see buffer).
type entry struct {
	key   []byte
	value []byte // nil when del
	seq   uint64 // interval of the last write
	del   bool   // a tombstone
	dead  bool   // removed by a rollback; iterators holding it skip it
}

type undoRecord struct {
	e       *entry
	value   []byte
	seq     uint64
	store   int
	del     bool
	created bool // undo by removing e from store
}

type savepointMark struct {
	seq uint64
	pos int // len(undo) when taken
}

// Savepoint marks a state of the write buffer that RollbackTo can return
// to. It is valid until it or an earlier savepoint is released, the next
// Commit or Discard, or a RollbackTo an earlier savepoint. The zero
// Savepoint is never valid.
type Savepoint struct {
	depth int
	seq   uint64
}

func entryLess(a, b *entry) bool { return bytes.Compare(a.key, b.key) < 0 }

func newBuffer(stores int) buffer {
	b := buffer{stores: make([]storeBuffer, stores)}
	for i := range b.stores {
		b.stores[i] = storeBuffer{
			keys: make(map[string]*entry),
			tree: btree.NewG(32, entryLess),
		}
	}
	return b
}

func (b *buffer) get(store int, key []byte) *entry {
	return b.stores[store].keys[string(key)]
}

// write buffers value for key, or a tombstone if del.
func (b *buffer) write(store int, key, value []byte, del bool) {
	sb := &b.stores[store]
	e := sb.keys[string(key)]
	if e == nil {
		e = b.newEntry()
		e.key = b.arena.copy(key)
		e.seq = b.seq
		sb.keys[unsafe.String(unsafe.SliceData(e.key), len(e.key))] = e
		sb.tree.ReplaceOrInsert(e)
		b.count++
		if len(b.sps) > 0 {
			b.undo = append(b.undo, undoRecord{e: e, store: store, created: true})
		}
		e.setValue(&b.arena, value, del, false)
		return
	}
	inPlace := len(b.sps) == 0 || e.seq == b.seq
	if !inPlace {
		b.undo = append(b.undo, undoRecord{e: e, value: e.value, seq: e.seq, del: e.del})
		e.seq = b.seq
	}
	e.setValue(&b.arena, value, del, inPlace)
}

func (e *entry) setValue(a *arena, value []byte, del, inPlace bool) {
	e.del = del
	switch {
	case del:
		e.value = nil
	case inPlace && e.value != nil && cap(e.value) >= len(value):
		e.value = e.value[:len(value)]
		copy(e.value, value)
	default:
		e.value = a.copy(value)
	}
}

func (b *buffer) newEntry() *entry {
	if len(b.slab) == cap(b.slab) {
		b.slab = make([]entry, 0, 256)
	}
	b.slab = b.slab[:len(b.slab)+1]
	return &b.slab[len(b.slab)-1]
}

func (b *buffer) savepoint() Savepoint {
	b.nextS++
	b.seq = b.nextS
	b.sps = append(b.sps, savepointMark{seq: b.seq, pos: len(b.undo)})
	return Savepoint{depth: len(b.sps) - 1, seq: b.seq}
}

func (b *buffer) valid(sp Savepoint) bool {
	return sp.seq != 0 && sp.depth < len(b.sps) && b.sps[sp.depth].seq == sp.seq
}

// rollbackTo undoes every write since sp, newest first. sp stays valid;
// later savepoints do not.
func (b *buffer) rollbackTo(sp Savepoint) {
	pos := b.sps[sp.depth].pos
	for i := len(b.undo) - 1; i >= pos; i-- {
		u := &b.undo[i]
		e := u.e
		if u.created {
			sb := &b.stores[u.store]
			delete(sb.keys, string(e.key))
			sb.tree.Delete(e)
			e.dead = true
			b.count--
		} else {
			e.value, e.seq, e.del = u.value, u.seq, u.del
		}
		*u = undoRecord{}
	}
	b.undo = b.undo[:pos]
	b.sps = b.sps[:sp.depth+1]
	b.seq = sp.seq
}

// release forgets sp and every later savepoint. Their undo records stay for
// the savepoints before sp; with none left the undo log is dropped.
func (b *buffer) release(sp Savepoint) {
	b.sps = b.sps[:sp.depth]
	if len(b.sps) > 0 {
		b.seq = b.sps[len(b.sps)-1].seq
		return
	}
	clear(b.undo)
	b.undo = b.undo[:0]
	b.nextS++
	b.seq = b.nextS
}

// reset empties the buffer. Slices handed out before stay valid: the arena
// and entries are dropped, not reused.
func (b *buffer) reset() {
	for i := range b.stores {
		clear(b.stores[i].keys)
		b.stores[i].tree.Clear(false)
	}
	b.count = 0
	clear(b.undo)
	b.undo = b.undo[:0]
	b.sps = b.sps[:0]
	b.nextS++
	b.seq = b.nextS
	b.arena = arena{}
	b.slab = nil
}

// arena copies keys and values into shared chunks, so that buffering a
// write costs no allocation in the common case. Returned slices have their
// capacity capped at their length, so an append never runs into a
// neighbour.
type arena struct {
	cur   []byte
	bytes int // bytes copied in
}

const (
	arenaChunk = 64 << 10
	arenaLarge = arenaChunk / 4 // larger copies get their own allocation
)

func (a *arena) copy(b []byte) []byte {
	n := len(b)
	a.bytes += n
	if n == 0 {
		return []byte{}
	}
	if n > arenaLarge {
		c := make([]byte, n)
		copy(c, b)
		return c
	}
	if cap(a.cur)-len(a.cur) < n {
		a.cur = make([]byte, 0, arenaChunk)
	}
	off := len(a.cur)
	a.cur = append(a.cur, b...)
	return a.cur[off : off+n : off+n]
}
