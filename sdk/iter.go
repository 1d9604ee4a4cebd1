package sdk

import (
	"encoding/binary"
	"strconv"

	"github.com/flowstate/flowstate/abi"
)

// Range returns an iterator over the keys k with start <= k < end, in
// ascending byte order. A nil or empty start means from the first key, a nil
// or empty end means to the last. The bounds are read during the call only.
//
// An Iterator belongs to the handler call that opened it: the host closes
// it when the batch ends, and using it later returns an error wrapping
// abi.ErrBadHandle. Close it when done; the host limits how many are open.
// Errors opening it are reported by Err.
//
// The spec does not say whether an open iterator sees Puts and Deletes made
// after it was opened (entries come in chunks, and the host's store may or
// may not show later writes), so do not rely on either: collect what you
// mean to change and write after Close.
func (s *KV) Range(start, end []byte) *Iterator {
	it := &Iterator{store: s, seq: batchSeq}
	h, err := s.handle()
	if err != nil {
		it.err, it.done = err, true
		return it
	}
	c := kvRange(h, ptr(start), int32(len(start)), ptr(end), int32(len(end)))
	if c < 0 {
		it.err, it.done = hostErr("kv_range", s.name, c), true
		return it
	}
	it.h, it.open = c, true
	return it
}

// Prefix returns an iterator over the keys that begin with prefix; an
// empty prefix is every key. See Range.
func (s *KV) Prefix(prefix []byte) *Iterator {
	return s.Range(prefix, prefixEnd(prefix))
}

// prefixEnd returns the smallest key greater than every key with the
// prefix p, or nil when there is none (p is empty or all 0xff).
func prefixEnd(p []byte) []byte {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] != 0xff {
			end := make([]byte, i+1)
			copy(end, p)
			end[i]++
			return end
		}
	}
	return nil
}

// Iterator walks a key range of a store; see [KV.Range]. Use it as
//
//	it := store.Range(start, end)
//	defer it.Close()
//	for it.Next() {
//		use(it.Key(), it.Value())
//	}
//	if err := it.Err(); err != nil {
//		return err
//	}
//
// Entries are fetched from the host many at a time into a buffer the
// Iterator owns (reused by later iterators after Close), which grows when an
// entry does not fit.
type Iterator struct {
	store *KV
	seq   uint32 // the batch it was opened in
	h     int32
	open  bool // the host's handle is not closed yet
	done  bool

	buf        []byte // entries from iter_next
	rest       []byte // entries of buf not returned yet
	key, value []byte
	err        error
}

// iterBufSize is the initial size of an Iterator's entry buffer.
const iterBufSize = 4 << 10

// freeIterBuf is the entry buffer of the last closed Iterator, handed to
// the next one.
var freeIterBuf []byte

// Next moves to the next entry and reports whether there is one. It returns
// false at the end of the range, on error (see Err) and after Close.
func (it *Iterator) Next() bool {
	it.key, it.value = nil, nil
	if it.done {
		return false
	}
	if it.seq != batchSeq {
		it.fail(&hostError{op: "iter_next", name: it.store.name, err: abi.ErrBadHandle,
			msg: "iterator used after the batch it was opened in"})
		return false
	}
	for len(it.rest) == 0 {
		if !it.fetch() {
			return false
		}
	}
	k, v, rest, err := abi.NextEntry(it.rest)
	if err != nil {
		it.fail(&hostError{op: "iter_next", name: it.store.name, err: err})
		return false
	}
	it.key, it.value, it.rest = k, v, rest
	return true
}

// fetch refills it.rest from the host. It returns false when the iterator
// is exhausted or failed.
func (it *Iterator) fetch() bool {
	if it.buf == nil {
		it.buf, freeIterBuf = freeIterBuf, nil
		if it.buf == nil {
			it.buf = make([]byte, iterBufSize)
		}
	}
	for {
		c := iterNext(it.h, &it.buf[0], int32(len(it.buf)))
		switch {
		case c > 0 && int(c) <= len(it.buf):
			it.rest = it.buf[:c]
			return true
		case c == 0:
			it.finish()
			return false
		case c == int32(abi.BufferTooSmall):
			// The host wrote the next entry's size; it was not consumed.
			need := binary.LittleEndian.Uint32(it.buf)
			if uint64(need) <= uint64(len(it.buf)) || need > 1<<31-1 {
				it.fail(&hostError{op: "iter_next", name: it.store.name, err: abi.ErrInvalid,
					msg: "host asked for a buffer of " + strconv.FormatUint(uint64(need), 10) +
						" bytes, have " + strconv.Itoa(len(it.buf))})
				return false
			}
			it.buf = make([]byte, max(int(need), 2*len(it.buf)))
		case c > 0:
			it.fail(&hostError{op: "iter_next", name: it.store.name, err: abi.ErrInvalid,
				msg: "host wrote past the buffer"})
			return false
		default:
			it.fail(hostErr("iter_next", it.store.name, c))
			return false
		}
	}
}

// Key returns the current entry's key, valid until the next Next or Close.
func (it *Iterator) Key() []byte { return it.key }

// Value returns the current entry's value, valid until the next Next or
// Close.
func (it *Iterator) Value() []byte { return it.value }

// Err returns the error that ended the iteration, or nil at the end of the
// range.
func (it *Iterator) Err() error { return it.err }

// Close releases the iterator; it is safe to call more than once and after
// the iterator is exhausted.
func (it *Iterator) Close() {
	it.key, it.value = nil, nil
	it.finish()
}

func (it *Iterator) fail(err error) {
	it.err = err
	it.finish()
}

// finish closes the host's handle (unless the host already did, at the end
// of the batch) and gives the buffer back.
func (it *Iterator) finish() {
	it.done = true
	it.rest = nil
	if it.open {
		it.open = false
		if it.seq == batchSeq {
			iterClose(it.h)
		}
	}
	if it.buf != nil {
		if len(it.buf) > len(freeIterBuf) {
			freeIterBuf = it.buf
		}
		it.buf = nil
	}
}
