// Package stubhost is an in-memory flowstate host that the SDK talks to
// when built natively: sdk's stub_abi.go forwards every import to it, and
// package sdktest drives it.
//
// It answers with the codes of abi/SPEC.md (NOT_FOUND, BAD_HANDLE,
// TOO_LARGE, BUFFER_TOO_SMALL, LIMIT_EXCEEDED, INVALID) and, like the real
// host, applies none of a failed batch's writes or emits. An iterator reads
// a snapshot taken by kv_range; the spec leaves that open, so the SDK's
// users must not rely on it. It is not safe for concurrent use.
package stubhost

import (
	"bytes"
	"maps"
	"slices"

	"github.com/flowstate/flowstate/abi"
)

// Config declares what a pipeline gives its module, and the limits.
type Config struct {
	Stores []string // store names, in handle order
	Topics []string // output topic names, in handle order

	// Limits; 0 means none.
	MaxKeySize   int // bytes, for kv_put and emit keys (TOO_LARGE)
	MaxValueSize int // bytes, for kv_put and emit values (TOO_LARGE)
	MaxEmits     int // records per batch (LIMIT_EXCEEDED)
	MaxIterators int // iterators open at once (LIMIT_EXCEEDED)
}

// Emitted is one record the module emitted. Nil Key or Value is null.
type Emitted struct {
	Topic      string
	Key, Value []byte
	Headers    []abi.Header // nil when none
}

// Log is one message of the log import.
type Log struct {
	Level int32 // a slog.Level value
	Msg   string
}

// Host is the state of one host instance.
type Host struct {
	cfg    Config
	stores []map[string][]byte // values are never modified in place
	saved  []map[string][]byte // stores at the start of the running batch
	iters  []*iter             // by handle; nil is a free handle
	open   int                 // non-nil iters

	inBatch bool
	pending []Emitted // emits of the running batch
	emits   []Emitted // emits of committed batches
	logs    []Log
	failMsg string
}

type iter struct {
	keys   []string
	values [][]byte
	pos    int
}

// New returns a host with empty stores.
func New(cfg Config) *Host {
	h := &Host{cfg: cfg, stores: make([]map[string][]byte, len(cfg.Stores))}
	for i := range h.stores {
		h.stores[i] = map[string][]byte{}
	}
	return h
}

// cur is the host the SDK's native imports reach. Without a harness it
// declares nothing.
var cur = New(Config{})

// Use makes h the host of the SDK's native imports.
func Use(h *Host) { cur = h }

// Guest is what package sdk registers natively so that a test can call its
// exports: the batch buffer, processing, and test-only hooks.
type Guest struct {
	Alloc      func(size uint32) []byte      // flowstate_alloc
	Process    func(n uint32) int32          // flowstate_process of the first n bytes of Alloc's buffer
	Reset      func()                        // forget cached handles, as a new instance would
	SetHandler func(fn any) (restore func()) // replace the OnRecord handler for a test
}

var guest Guest

// Bind registers the guest; sdk calls it from init in native builds.
func Bind(g Guest) { guest = g }

// Bound returns the registered guest; ok is false when the SDK is not
// linked in natively.
func Bound() (g Guest, ok bool) { return guest, guest.Process != nil }

// Run processes one batch encoding with the bound guest as the host does:
// alloc, copy, process, then commit or discard. It returns the status and,
// for a failed batch, the message of the last fail call.
func (h *Host) Run(batch []byte) (status int32, failMsg string) {
	buf := guest.Alloc(uint32(len(batch)))
	if len(buf) < len(batch) {
		return 1, "stubhost: flowstate_alloc returned too small a buffer"
	}
	copy(buf, batch)
	h.begin()
	status = guest.Process(uint32(len(batch)))
	h.end(status == 0)
	if status != 0 {
		return status, h.failMsg
	}
	return 0, ""
}

func (h *Host) begin() {
	h.inBatch = true
	h.failMsg = ""
	h.pending = h.pending[:0]
	h.saved = h.saved[:0]
	for _, s := range h.stores {
		h.saved = append(h.saved, maps.Clone(s))
	}
}

func (h *Host) end(ok bool) {
	h.inBatch = false
	if ok {
		h.emits = append(h.emits, h.pending...)
	} else {
		copy(h.stores, h.saved)
	}
	h.pending = h.pending[:0]
	h.saved = h.saved[:0]
	// Iterators still open when flowstate_process returns are closed.
	clear(h.iters)
	h.iters = h.iters[:0]
	h.open = 0
}

// Emits returns the records emitted by committed batches, oldest first.
func (h *Host) Emits() []Emitted { return slices.Clone(h.emits) }

// TakeEmits returns Emits and forgets them.
func (h *Host) TakeEmits() []Emitted {
	e := h.emits
	h.emits = nil
	return e
}

// Logs returns the log messages so far.
func (h *Host) Logs() []Log { return slices.Clone(h.logs) }

// StoreID returns the handle of a declared store.
func (h *Host) StoreID(name string) (int, bool) {
	i := slices.Index(h.cfg.Stores, name)
	return i, i >= 0
}

// Get returns a copy of a committed value.
func (h *Host) Get(store int, key string) ([]byte, bool) {
	v, ok := h.stores[store][key]
	return bytes.Clone(v), ok
}

// Put sets a value directly, as if committed earlier.
func (h *Host) Put(store int, key string, value []byte) {
	h.stores[store][key] = bytes.Clone(value)
}

// Contents returns a copy of a store.
func (h *Host) Contents(store int) map[string][]byte {
	m := make(map[string][]byte, len(h.stores[store]))
	for k, v := range h.stores[store] {
		m[k] = bytes.Clone(v)
	}
	return m
}

// The imports, on the current host. Slices alias guest memory for the
// call only. A nil key or value in Emit is null; every other slice is
// non-nil.

// StoreOpen is store_open.
func StoreOpen(name []byte) int32 {
	if i := slices.Index(cur.cfg.Stores, string(name)); i >= 0 {
		return int32(i)
	}
	return int32(abi.NotFound)
}

// TopicOpen is topic_open.
func TopicOpen(name []byte) int32 {
	if i := slices.Index(cur.cfg.Topics, string(name)); i >= 0 {
		return int32(i)
	}
	return int32(abi.NotFound)
}

func (h *Host) store(id int32) (map[string][]byte, bool) {
	if id < 0 || int(id) >= len(h.stores) {
		return nil, false
	}
	return h.stores[id], true
}

// KVGet is kv_get; buf is the guest buffer, len(buf) its capacity.
func KVGet(store int32, key, buf []byte) int32 {
	s, ok := cur.store(store)
	if !ok {
		return int32(abi.BadHandle)
	}
	v, ok := s[string(key)]
	if !ok {
		return int32(abi.NotFound)
	}
	copy(buf, v)
	return int32(len(v))
}

// KVPut is kv_put.
func KVPut(store int32, key, val []byte) int32 {
	s, ok := cur.store(store)
	if !ok {
		return int32(abi.BadHandle)
	}
	if over(len(key), cur.cfg.MaxKeySize) || over(len(val), cur.cfg.MaxValueSize) {
		return int32(abi.TooLarge)
	}
	v := make([]byte, len(val)) // never nil: a present value
	copy(v, val)
	s[string(key)] = v
	return 0
}

// KVDelete is kv_delete.
func KVDelete(store int32, key []byte) int32 {
	s, ok := cur.store(store)
	if !ok {
		return int32(abi.BadHandle)
	}
	delete(s, string(key))
	return 0
}

// KVRange is kv_range.
func KVRange(store int32, start, end []byte) int32 {
	s, ok := cur.store(store)
	if !ok {
		return int32(abi.BadHandle)
	}
	if cur.cfg.MaxIterators > 0 && cur.open >= cur.cfg.MaxIterators {
		return int32(abi.LimitExceeded)
	}
	it := &iter{}
	for k := range s {
		if (len(start) == 0 || k >= string(start)) && (len(end) == 0 || k < string(end)) {
			it.keys = append(it.keys, k)
		}
	}
	slices.Sort(it.keys)
	for _, k := range it.keys {
		it.values = append(it.values, s[k])
	}
	cur.open++
	// The lowest free handle, as a host reusing handles would give.
	for i, x := range cur.iters {
		if x == nil {
			cur.iters[i] = it
			return int32(i)
		}
	}
	cur.iters = append(cur.iters, it)
	return int32(len(cur.iters) - 1)
}

func (h *Host) iter(id int32) (*iter, bool) {
	if id < 0 || int(id) >= len(h.iters) || h.iters[id] == nil {
		return nil, false
	}
	return h.iters[id], true
}

// IterNext is iter_next; len(buf) is the capacity.
func IterNext(id int32, buf []byte) int32 {
	it, ok := cur.iter(id)
	if !ok {
		return int32(abi.BadHandle)
	}
	out := buf[:0]
	for ; it.pos < len(it.keys); it.pos++ {
		k, v := []byte(it.keys[it.pos]), it.values[it.pos]
		n := abi.EntrySize(k, v)
		if len(out)+n > len(buf) {
			if len(out) == 0 {
				if len(buf) >= 4 {
					buf[0], buf[1], buf[2], buf[3] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
				}
				return int32(abi.BufferTooSmall)
			}
			break
		}
		out = abi.AppendEntry(out, k, v)
	}
	return int32(len(out))
}

// IterClose is iter_close.
func IterClose(id int32) int32 {
	if _, ok := cur.iter(id); !ok {
		return int32(abi.BadHandle)
	}
	cur.iters[id] = nil
	cur.open--
	return 0
}

// Emit is emit; a nil key or val is null, an empty hdr no headers.
func Emit(topic int32, key, val, hdr []byte) int32 {
	if topic < 0 || int(topic) >= len(cur.cfg.Topics) {
		return int32(abi.BadHandle)
	}
	var hs []abi.Header
	if len(hdr) > 0 {
		var err error
		if hs, err = abi.DecodeHeaders(hdr); err != nil {
			return int32(abi.Invalid)
		}
		for i := range hs {
			if hs[i].Value != nil {
				hs[i].Value = bytes.Clone(hs[i].Value)
			}
		}
	}
	if over(len(key), cur.cfg.MaxKeySize) || over(len(val), cur.cfg.MaxValueSize) {
		return int32(abi.TooLarge)
	}
	if cur.cfg.MaxEmits > 0 && len(cur.pending) >= cur.cfg.MaxEmits {
		return int32(abi.LimitExceeded)
	}
	e := Emitted{Topic: cur.cfg.Topics[topic], Headers: hs}
	if key != nil {
		e.Key = append([]byte{}, key...)
	}
	if val != nil {
		e.Value = append([]byte{}, val...)
	}
	if cur.inBatch {
		cur.pending = append(cur.pending, e)
	} else {
		// Outside a batch there is nothing to discard.
		cur.emits = append(cur.emits, e)
	}
	return 0
}

// LogMsg is log.
func LogMsg(level int32, msg []byte) int32 {
	switch level {
	case abi.LevelDebug, abi.LevelInfo, abi.LevelWarn, abi.LevelError:
	default:
		return int32(abi.Invalid)
	}
	cur.logs = append(cur.logs, Log{Level: level, Msg: string(msg)})
	return 0
}

// Fail is fail.
func Fail(msg []byte) int32 {
	cur.failMsg = string(msg)
	return 0
}

func over(n, limit int) bool { return limit > 0 && n > limit }
