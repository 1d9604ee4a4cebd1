// Package sdktest runs a processor built with package sdk natively, under
// go test, against an in-memory host: feed it records, then look at what it
// emitted and stored.
//
//	func TestCount(t *testing.T) {
//		h := sdktest.New(sdktest.Config{Stores: []string{"seen"}, Topics: []string{"counts"}})
//		t.Cleanup(h.Close)
//		if err := h.Feed("in", "k", "v"); err != nil {
//			t.Fatal(err)
//		}
//		got := h.TakeEmits() // [counts "k"="\x00...\x01"]
//	}
//
// The processor's handler is the one it registered with sdk.OnRecord in
// init, or Config.Handler. Batches go through the same path as in a module:
// the batch is encoded, copied into the buffer of the SDK's
// flowstate_alloc and decoded by its flowstate_process; a failed batch
// leaves no writes or emits behind.
//
// The SDK's state is global, as in a module, so one Harness is open at a
// time: New panics while another is open, and tests using sdktest must not
// call t.Parallel.
package sdktest

import (
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	"github.com/flowstate/flowstate/abi"
	"github.com/flowstate/flowstate/sdk"
	"github.com/flowstate/flowstate/sdk/internal/stubhost"
)

// Config is what the pipeline declares for the processor, and the host's
// limits.
type Config struct {
	// Stores are the stores the pipeline declares; sdk.Store of any other
	// name gets abi.ErrNotFound.
	Stores []string
	// Topics are the output topics; emitting to another gets
	// abi.ErrNotFound.
	Topics []string
	// Handler, when set, replaces the handler registered with sdk.OnRecord
	// while the Harness is open.
	Handler func(sdk.Record, sdk.Out) error

	// Limits; 0 means none. Over them the host answers abi.ErrTooLarge
	// (keys and values, in bytes) or abi.ErrLimitExceeded (records emitted
	// per batch, iterators open at once).
	MaxKeySize   int
	MaxValueSize int
	MaxEmits     int
	MaxIterators int
}

// Emit is one record the processor emitted. A nil Key or Value is null.
type Emit struct {
	Topic      string
	Key, Value []byte
	Headers    []sdk.Header // nil when none
}

// String formats e as `topic "key"="value"`, with null for a null key or
// value and headers appended as ` [h="v"]`, for comparing in tests.
func (e Emit) String() string {
	var b strings.Builder
	b.WriteString(e.Topic)
	b.WriteByte(' ')
	b.WriteString(quote(e.Key))
	b.WriteByte('=')
	b.WriteString(quote(e.Value))
	for _, h := range e.Headers {
		b.WriteString(" [")
		b.WriteString(strconv.Quote(h.Key))
		b.WriteByte('=')
		b.WriteString(quote(h.Value))
		b.WriteByte(']')
	}
	return b.String()
}

func quote(b []byte) string {
	if b == nil {
		return "null"
	}
	return strconv.Quote(string(b))
}

// Log is one message the processor logged.
type Log struct {
	Level slog.Level
	Msg   string
}

// BatchError is a batch the processor failed: flowstate_process returned
// Status (non-zero) after reporting Message with the fail import, such as
// "in/0@3: sdk: kv_put seen: abi: TOO_LARGE". The host gets text, not a Go
// error, so errors.Is does not see the handler's error.
type BatchError struct {
	Status  int32
	Message string
}

func (e *BatchError) Error() string {
	return "batch failed (status " + strconv.Itoa(int(e.Status)) + "): " + e.Message
}

// Harness plays the host for the processor linked into the test binary.
type Harness struct {
	host    *stubhost.Host
	cfg     Config
	restore func()
	offsets map[string]int64
	closed  bool
}

var mu sync.Mutex // held from New to Close

// ErrNotNative is returned by Process when the SDK was built for wasip1,
// where there is no in-memory host.
var ErrNotNative = errors.New("sdktest: the SDK runs natively only (not GOOS=wasip1)")

// New starts a host with empty stores for cfg, as a fresh module instance
// sees it: the SDK resolves its stores and topics again. Close it when done
// (t.Cleanup(h.Close)); New panics while another Harness is open.
func New(cfg Config) *Harness {
	if !mu.TryLock() {
		panic("sdktest: New while another Harness is open: Close it first, and do not use t.Parallel with sdktest")
	}
	h := &Harness{host: stubhost.New(stubhost.Config{
		Stores:       cfg.Stores,
		Topics:       cfg.Topics,
		MaxKeySize:   cfg.MaxKeySize,
		MaxValueSize: cfg.MaxValueSize,
		MaxEmits:     cfg.MaxEmits,
		MaxIterators: cfg.MaxIterators,
	}), cfg: cfg, offsets: map[string]int64{}}
	stubhost.Use(h.host)
	if g, ok := stubhost.Bound(); ok {
		g.Reset()
		var fn any
		if cfg.Handler != nil {
			fn = cfg.Handler
		}
		h.restore = g.SetHandler(fn)
	}
	return h
}

// Close ends the harness and lets the next New proceed. It is safe to call
// more than once.
func (h *Harness) Close() {
	if h.closed {
		return
	}
	h.closed = true
	if h.restore != nil {
		h.restore()
	}
	stubhost.Use(stubhost.New(stubhost.Config{}))
	mu.Unlock()
}

// Record returns a record of topic with the next offset of that topic
// (from 0), partition 0 and timestamp 0, for Process.
func (h *Harness) Record(topic, key, value string) sdk.Record {
	off := h.offsets[topic]
	h.offsets[topic] = off + 1
	return sdk.Record{Topic: topic, Offset: off, Key: []byte(key), Value: []byte(value)}
}

// Feed processes a batch of one record made by Record.
func (h *Harness) Feed(topic, key, value string) error {
	return h.Process(h.Record(topic, key, value))
}

// Process runs recs as one batch. It returns a *BatchError when the
// processor fails the batch, whose writes and emits are then discarded.
// Offsets are taken as given.
func (h *Harness) Process(recs ...sdk.Record) error {
	if h.closed {
		return errors.New("sdktest: Process on a closed Harness")
	}
	if _, ok := stubhost.Bound(); !ok {
		return ErrNotNative
	}
	status, msg := h.host.Run(abi.AppendBatch(nil, recs))
	if status != 0 {
		return &BatchError{Status: status, Message: msg}
	}
	return nil
}

// Emits returns what committed batches emitted, oldest first.
func (h *Harness) Emits() []Emit { return convert(h.host.Emits()) }

// TakeEmits returns Emits and forgets them, so the next call returns only
// newer ones.
func (h *Harness) TakeEmits() []Emit { return convert(h.host.TakeEmits()) }

func convert(es []stubhost.Emitted) []Emit {
	if len(es) == 0 {
		return nil
	}
	out := make([]Emit, len(es))
	for i, e := range es {
		out[i] = Emit{Topic: e.Topic, Key: e.Key, Value: e.Value, Headers: e.Headers}
	}
	return out
}

// Logs returns the messages logged so far.
func (h *Harness) Logs() []Log {
	ls := h.host.Logs()
	out := make([]Log, len(ls))
	for i, l := range ls {
		out[i] = Log{Level: slog.Level(l.Level), Msg: l.Msg}
	}
	return out
}

// Get returns a copy of key's committed value in store.
func (h *Harness) Get(store, key string) (value []byte, ok bool) {
	return h.host.Get(h.storeID(store), key)
}

// Put sets key in store directly, as if an earlier batch had written it.
func (h *Harness) Put(store, key string, value []byte) {
	h.host.Put(h.storeID(store), key, value)
}

// Store returns the committed contents of store, values as strings, for
// comparing in tests.
func (h *Harness) Store(store string) map[string]string {
	m := map[string]string{}
	for k, v := range h.host.Contents(h.storeID(store)) {
		m[k] = string(v)
	}
	return m
}

// Int64 returns key's value in store decoded as sdk.GetInt64 does, 0 when
// absent. ok is false for a value that is not 8 bytes.
func (h *Harness) Int64(store, key string) (n int64, ok bool) {
	v, found := h.Get(store, key)
	if !found {
		return 0, true
	}
	n, err := sdk.BytesInt64(v)
	return n, err == nil
}

// storeID panics for a store not in Config.Stores: that is a mistake in the
// test, not in the processor.
func (h *Harness) storeID(name string) int {
	id, ok := h.host.StoreID(name)
	if !ok {
		panic("sdktest: store " + strconv.Quote(name) + " is not in Config.Stores")
	}
	return id
}

// Strings formats each emit with Emit.String, for comparing lists.
func Strings(es []Emit) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.String()
	}
	return out
}
