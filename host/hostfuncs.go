package host

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"

	"github.com/flowstate/flowstate/abi"
	"github.com/flowstate/flowstate/state"
	"github.com/tetratelabs/wazero/api"
)

// importParams gives the number of i32 parameters of each host function of
// SPEC.md; each returns one i32.
var importParams = map[string]int{
	abi.ImportStoreOpen: 2,
	abi.ImportTopicOpen: 2,
	abi.ImportKVGet:     5,
	abi.ImportKVPut:     5,
	abi.ImportKVDelete:  3,
	abi.ImportKVRange:   5,
	abi.ImportIterNext:  3,
	abi.ImportIterClose: 1,
	abi.ImportEmit:      7,
	abi.ImportLog:       3,
	abi.ImportFail:      2,
}

// hostFuncs returns the host functions bound to i, by import name.
//
// Each is a stack-based api.GoModuleFunc (WithFunc's reflection costs about
// 18x more per call). Every one reads its arguments as uint32 (lengths and
// pointers) or int32 (handles, levels), checks every (ptr, len) with
// Memory.Read, whose ok flag covers offset overflow, and answers any bad
// input with an abi.Code: no guest input makes it panic. mod is the calling
// guest; its memory is only read or written during the call.
func (i *Instance) hostFuncs() map[string]api.GoModuleFunc {
	return map[string]api.GoModuleFunc{
		abi.ImportStoreOpen: i.storeOpen,
		abi.ImportTopicOpen: i.topicOpen,
		abi.ImportKVGet:     i.kvGet,
		abi.ImportKVPut:     i.kvPut,
		abi.ImportKVDelete:  i.kvDelete,
		abi.ImportKVRange:   i.kvRange,
		abi.ImportIterNext:  i.iterNext,
		abi.ImportIterClose: i.iterClose,
		abi.ImportEmit:      i.emit,
		abi.ImportLog:       i.logCall,
		abi.ImportFail:      i.fail,
	}
}

func ret(stack []uint64, c abi.Code) { stack[0] = api.EncodeI32(int32(c)) }

func retN(stack []uint64, n int) { stack[0] = api.EncodeI32(int32(n)) }

// read returns the guest's bytes at the (ptr, len) in stack[at], stack[at+1].
// The slice aliases guest memory: valid during this host call only.
func read(mod api.Module, stack []uint64, at int) ([]byte, bool) {
	return mod.Memory().Read(api.DecodeU32(stack[at]), api.DecodeU32(stack[at+1]))
}

// readNullable is read where a length of abi.Null means nil.
func readNullable(mod api.Module, stack []uint64, at int) ([]byte, bool) {
	if api.DecodeU32(stack[at+1]) == abi.Null {
		return nil, true
	}
	b, ok := read(mod, stack, at)
	if ok && b == nil {
		b = []byte{} // empty, not null
	}
	return b, ok
}

// storeID returns the DB store ID of a store handle.
func (i *Instance) storeID(h int32) (int, bool) {
	if h < 0 || int(h) >= len(i.stores) {
		return 0, false
	}
	return i.stores[h], true
}

// failInternal records a host-side error, which fails the batch, and
// returns INTERNAL.
func (i *Instance) failInternal(stack []uint64, op string, err error) {
	if i.internal == nil {
		i.internal = fmt.Errorf("%s: %w", op, err)
	}
	ret(stack, abi.Internal)
}

// refuse records a refused write or emit, which fails the batch.
func (i *Instance) refuse(stack []uint64, c abi.Code, format string, args ...any) {
	if i.refused == nil {
		i.refused = fmt.Errorf(format, args...)
	}
	ret(stack, c)
}

// store_open(name_ptr, name_len) -> handle
func (i *Instance) storeOpen(_ context.Context, mod api.Module, stack []uint64) {
	name, ok := read(mod, stack, 0)
	if !ok {
		ret(stack, abi.BadPointer)
		return
	}
	for h, s := range i.names {
		if s == string(name) {
			retN(stack, h)
			return
		}
	}
	ret(stack, abi.NotFound)
}

// topic_open(name_ptr, name_len) -> handle
func (i *Instance) topicOpen(_ context.Context, mod api.Module, stack []uint64) {
	name, ok := read(mod, stack, 0)
	if !ok {
		ret(stack, abi.BadPointer)
		return
	}
	for h, t := range i.topics {
		if t == string(name) {
			retN(stack, h)
			return
		}
	}
	ret(stack, abi.NotFound)
}

// kv_get(store, key_ptr, key_len, buf_ptr, buf_cap) -> full value length
func (i *Instance) kvGet(_ context.Context, mod api.Module, stack []uint64) {
	store, ok := i.storeID(api.DecodeI32(stack[0]))
	if !ok {
		ret(stack, abi.BadHandle)
		return
	}
	key, ok := read(mod, stack, 1)
	if !ok {
		ret(stack, abi.BadPointer)
		return
	}
	buf, ok := read(mod, stack, 3)
	if !ok {
		ret(stack, abi.BadPointer)
		return
	}
	v, found, err := i.db.Get(store, key)
	switch {
	case err != nil:
		i.failInternal(stack, abi.ImportKVGet, err)
	case !found:
		ret(stack, abi.NotFound)
	case len(v) > math.MaxInt32:
		i.failInternal(stack, abi.ImportKVGet, fmt.Errorf("value of %d bytes does not fit an i32", len(v)))
	default:
		copy(buf, v)
		retN(stack, len(v))
	}
}

// kv_put(store, key_ptr, key_len, val_ptr, val_len) -> 0
func (i *Instance) kvPut(_ context.Context, mod api.Module, stack []uint64) {
	if !i.inBatch {
		ret(stack, abi.Invalid)
		return
	}
	store, ok := i.storeID(api.DecodeI32(stack[0]))
	if !ok {
		ret(stack, abi.BadHandle)
		return
	}
	key, ok := read(mod, stack, 1)
	if !ok {
		ret(stack, abi.BadPointer)
		return
	}
	val, ok := read(mod, stack, 3)
	if !ok {
		ret(stack, abi.BadPointer)
		return
	}
	if lim := &i.m.lim; len(key) > lim.MaxKeyBytes || len(val) > lim.MaxValueBytes {
		i.refuse(stack, abi.TooLarge, "%s to %s: key of %d bytes and value of %d bytes, over max_key_bytes %d or max_value_bytes %d",
			abi.ImportKVPut, i.names[api.DecodeI32(stack[0])], len(key), len(val), lim.MaxKeyBytes, lim.MaxValueBytes)
		return
	}
	if !i.bufferWrite(stack, abi.ImportKVPut, api.DecodeI32(stack[0]), len(key)+len(val)) {
		return
	}
	if err := i.db.Put(store, key, val); err != nil {
		i.failInternal(stack, abi.ImportKVPut, err)
		return
	}
	ret(stack, abi.OK)
}

// kv_delete(store, key_ptr, key_len) -> 0
func (i *Instance) kvDelete(_ context.Context, mod api.Module, stack []uint64) {
	if !i.inBatch {
		ret(stack, abi.Invalid)
		return
	}
	store, ok := i.storeID(api.DecodeI32(stack[0]))
	if !ok {
		ret(stack, abi.BadHandle)
		return
	}
	key, ok := read(mod, stack, 1)
	if !ok {
		ret(stack, abi.BadPointer)
		return
	}
	// A delete is a changelog record (a tombstone) like a put: its key
	// has the same limit.
	if lim := &i.m.lim; len(key) > lim.MaxKeyBytes {
		i.refuse(stack, abi.TooLarge, "%s from %s: key of %d bytes, over max_key_bytes %d",
			abi.ImportKVDelete, i.names[api.DecodeI32(stack[0])], len(key), lim.MaxKeyBytes)
		return
	}
	if !i.bufferWrite(stack, abi.ImportKVDelete, api.DecodeI32(stack[0]), len(key)) {
		return
	}
	if err := i.db.Delete(store, key); err != nil {
		i.failInternal(stack, abi.ImportKVDelete, err)
		return
	}
	ret(stack, abi.OK)
}

// bufferWrite counts n bytes of a store write against the batch's
// max_write_bytes, refusing the write (LIMIT_EXCEEDED) when they do not fit.
func (i *Instance) bufferWrite(stack []uint64, op string, h int32, n int) bool {
	lim := &i.m.lim
	if i.writeBytes+n > lim.MaxWriteBytes {
		i.refuse(stack, abi.LimitExceeded, "%s to %s: the batch's store writes would be %d bytes, over max_write_bytes %d",
			op, i.names[h], i.writeBytes+n, lim.MaxWriteBytes)
		return false
	}
	i.writeBytes += n
	return true
}

// openIter is an iterator the guest holds, by handle.
type openIter struct {
	handle int32
	it     *state.Iterator
	// A pending entry was read from it but did not fit the guest's buffer;
	// iter_next returns it first. It is a copy: the iterator's own slices
	// do not survive writes to the DB.
	pending    bool
	pKey, pVal []byte
}

// kv_range(store, start_ptr, start_len, end_ptr, end_len) -> iterator handle
func (i *Instance) kvRange(_ context.Context, mod api.Module, stack []uint64) {
	store, ok := i.storeID(api.DecodeI32(stack[0]))
	if !ok {
		ret(stack, abi.BadHandle)
		return
	}
	start, ok := read(mod, stack, 1)
	if !ok {
		ret(stack, abi.BadPointer)
		return
	}
	end, ok := read(mod, stack, 3)
	if !ok {
		ret(stack, abi.BadPointer)
		return
	}
	if len(i.iters) >= i.m.lim.MaxOpenIterators {
		ret(stack, abi.LimitExceeded)
		return
	}
	// state.Range treats an empty bound as unbounded, as SPEC.md does a
	// zero length.
	it, err := i.db.Range(store, start, end)
	if err != nil {
		i.failInternal(stack, abi.ImportKVRange, err)
		return
	}
	h := i.newIterHandle()
	i.iters = append(i.iters, openIter{handle: h, it: it})
	retN(stack, int(h))
}

// newIterHandle returns a non-negative handle no open iterator has. Handles
// are not reused soon after close, so a stale handle gets BAD_HANDLE.
func (i *Instance) newIterHandle() int32 {
	for {
		h := i.nextIter
		i.nextIter++
		if i.nextIter < 0 {
			i.nextIter = 0
		}
		if i.iter(h) == nil {
			return h
		}
	}
}

func (i *Instance) iter(h int32) *openIter {
	for k := range i.iters {
		if i.iters[k].handle == h {
			return &i.iters[k]
		}
	}
	return nil
}

// iter_next(iter, buf_ptr, buf_cap) -> bytes written
func (i *Instance) iterNext(_ context.Context, mod api.Module, stack []uint64) {
	w := i.iter(api.DecodeI32(stack[0]))
	if w == nil {
		ret(stack, abi.BadHandle)
		return
	}
	buf, ok := read(mod, stack, 1)
	if !ok {
		ret(stack, abi.BadPointer)
		return
	}
	// The result is an i32: never report more than MaxInt32 bytes.
	buf = buf[:min(len(buf), math.MaxInt32)]
	n := 0
	for {
		var k, v []byte
		if w.pending {
			k, v = w.pKey, w.pVal
		} else {
			if !w.it.Next() {
				if err := w.it.Err(); err != nil && n == 0 {
					i.failInternal(stack, abi.ImportIterNext, err)
					return
				}
				break // exhausted, or the error is returned by the next call
			}
			k, v = w.it.Key(), w.it.Value()
		}
		size := abi.EntrySize(k, v)
		if n+size > len(buf) {
			if !w.pending {
				w.pKey = append(w.pKey[:0], k...)
				w.pVal = append(w.pVal[:0], v...)
				w.pending = true
			}
			if n == 0 {
				if len(buf) >= 4 {
					binary.LittleEndian.PutUint32(buf, uint32(size))
				}
				ret(stack, abi.BufferTooSmall)
				return
			}
			break
		}
		abi.AppendEntry(buf[n:n], k, v)
		n += size
		w.pending = false
	}
	retN(stack, n)
}

// iter_close(iter) -> 0
func (i *Instance) iterClose(_ context.Context, _ api.Module, stack []uint64) {
	h := api.DecodeI32(stack[0])
	for k := range i.iters {
		if i.iters[k].handle == h {
			i.iters[k].it.Close()
			i.iters = append(i.iters[:k], i.iters[k+1:]...)
			ret(stack, abi.OK)
			return
		}
	}
	ret(stack, abi.BadHandle)
}

// closeIters closes the iterators the guest left open.
func (i *Instance) closeIters() {
	for k := range i.iters {
		i.iters[k].it.Close()
	}
	clear(i.iters)
	i.iters = i.iters[:0]
}

// emit(topic, key_ptr, key_len, val_ptr, val_len, hdr_ptr, hdr_len) -> 0
func (i *Instance) emit(_ context.Context, mod api.Module, stack []uint64) {
	if !i.inBatch {
		ret(stack, abi.Invalid)
		return
	}
	t := api.DecodeI32(stack[0])
	if t < 0 || int(t) >= len(i.topics) {
		ret(stack, abi.BadHandle)
		return
	}
	key, ok := readNullable(mod, stack, 1)
	if !ok {
		ret(stack, abi.BadPointer)
		return
	}
	val, ok := readNullable(mod, stack, 3)
	if !ok {
		ret(stack, abi.BadPointer)
		return
	}
	var hdrs []abi.Header
	hdrLen := api.DecodeU32(stack[6])
	if hdrLen != 0 {
		b, ok := read(mod, stack, 5)
		if !ok {
			ret(stack, abi.BadPointer)
			return
		}
		var err error
		if hdrs, err = abi.DecodeHeaders(b); err != nil {
			ret(stack, abi.Invalid)
			return
		}
		if len(hdrs) == 0 {
			hdrs = nil
		}
	}
	// The headers count with the value: the record, framed, must fit what
	// the topic and the producer accept (engine: max.message.bytes).
	lim := &i.m.lim
	if len(key) > lim.MaxKeyBytes || len(val)+int(hdrLen) > lim.MaxValueBytes {
		i.refuse(stack, abi.TooLarge, "%s to %s: key of %d bytes and value of %d bytes with %d bytes of headers, over max_key_bytes %d or max_value_bytes %d",
			abi.ImportEmit, i.topics[t], len(key), len(val), hdrLen, lim.MaxKeyBytes, lim.MaxValueBytes)
		return
	}
	size := len(key) + len(val) + int(hdrLen)
	if n := len(i.out) - i.out0; n >= lim.MaxOutputRecords || i.outBytes+size > lim.MaxOutputBytes {
		i.refuse(stack, abi.LimitExceeded, "%s to %s: the batch's output would be %d records of %d bytes, over max_output_records %d or max_output_bytes %d",
			abi.ImportEmit, i.topics[t], n+1, i.outBytes+size, lim.MaxOutputRecords, lim.MaxOutputBytes)
		return
	}
	for k := range hdrs {
		hdrs[k].Value = i.copyOut(hdrs[k].Value)
	}
	i.out = append(i.out, Output{Topic: i.topics[t], Key: i.copyOut(key), Value: i.copyOut(val), Headers: hdrs})
	i.outBytes += size
	ret(stack, abi.OK)
}

// log(level, msg_ptr, msg_len) -> 0
func (i *Instance) logCall(ctx context.Context, mod api.Module, stack []uint64) {
	level := slog.Level(api.DecodeI32(stack[0]))
	switch level {
	case abi.LevelDebug, abi.LevelInfo, abi.LevelWarn, abi.LevelError:
	default:
		ret(stack, abi.Invalid)
		return
	}
	msg, ok := read(mod, stack, 1)
	if !ok {
		ret(stack, abi.BadPointer)
		return
	}
	if i.log.Enabled(ctx, level) {
		i.log.LogAttrs(ctx, level, string(msg[:min(len(msg), maxLogBytes)]), slog.String("source", "guest"))
	}
	ret(stack, abi.OK)
}

// fail(msg_ptr, msg_len) -> 0
func (i *Instance) fail(_ context.Context, mod api.Module, stack []uint64) {
	msg, ok := read(mod, stack, 0)
	if !ok {
		ret(stack, abi.BadPointer)
		return
	}
	i.failMsg = string(msg[:min(len(msg), maxLogBytes)])
	ret(stack, abi.OK)
}
