package host

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"sync"
	"testing"

	"github.com/flowstate/flowstate/abi"
	"github.com/flowstate/flowstate/conformance"
	"github.com/flowstate/flowstate/state"
)

// wasmOf returns the guest module name of the WAT corpus shared with the
// conformance suite (conformance/testdata/name.wat, built and checked in as
// conformance/testdata/wasm/name.wasm).
func wasmOf(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := conformance.EmbeddedModule(name)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// logBuffer collects a logger's text output for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newRuntime(tb testing.TB, cfg RuntimeConfig) *Runtime {
	tb.Helper()
	rt, err := NewRuntime(tb.Context(), cfg)
	if err != nil {
		tb.Fatalf("NewRuntime: %v", err)
	}
	tb.Cleanup(func() { rt.Close(context.Background()) })
	return rt
}

func compile(tb testing.TB, rt *Runtime, name string, lim Limits) *Module {
	tb.Helper()
	m, err := rt.Compile(tb.Context(), name, wasmOf(tb, name), lim)
	if err != nil {
		tb.Fatalf("Compile %s: %v", name, err)
	}
	return m
}

func openDB(tb testing.TB, stores ...string) *state.DB {
	tb.Helper()
	db, err := state.Open(state.Config{Dir: tb.TempDir(), Stores: stores})
	if err != nil {
		tb.Fatalf("state.Open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func instantiate(tb testing.TB, m *Module, cfg InstanceConfig) *Instance {
	tb.Helper()
	i, err := m.Instantiate(tb.Context(), cfg)
	if err != nil {
		tb.Fatalf("Instantiate: %v", err)
	}
	tb.Cleanup(func() { i.Close(context.Background()) })
	return i
}

func get(tb testing.TB, db *state.DB, store string, key string) (string, bool) {
	tb.Helper()
	id, ok := db.StoreID(store)
	if !ok {
		tb.Fatalf("no store %q", store)
	}
	v, ok, err := db.Get(id, []byte(key))
	if err != nil {
		tb.Fatalf("Get %q: %v", key, err)
	}
	return string(v), ok
}

func put(tb testing.TB, db *state.DB, store, key, value string) {
	tb.Helper()
	id, _ := db.StoreID(store)
	if err := db.Put(id, []byte(key), []byte(value)); err != nil {
		tb.Fatalf("Put %q: %v", key, err)
	}
}

// The probe guest's operations (conformance/testdata/probe.wat).
const (
	opStoreOpen = iota
	opTopicOpen
	opKVGet
	opKVPut
	opKVDelete
	opKVRange
	opIterNext
	opIterClose
	opEmit
	opLog
	opFail
	opTrap
	opLoop
	opGrow
	opExit
	opReturn
	opFdWrite
	opRandom
	opClock
	opPoke
)

// call is one probe call: an op and up to 7 raw i32 arguments.
type call [8]int32

func op(o int32, args ...int32) call {
	var c call
	c[0] = o
	copy(c[1:], args)
	return c
}

// poke returns the probe calls that write data at addr.
func poke(addr int32, data []byte) []call {
	var cs []call
	for off := 0; off < len(data); off += 4 {
		var w [4]byte
		copy(w[:], data[off:])
		cs = append(cs, op(opPoke, addr+int32(off), int32(binary.LittleEndian.Uint32(w[:]))))
	}
	return cs
}

// probeRecord is one input record whose value makes the probe run calls.
func probeRecord(calls ...call) abi.Record {
	v := make([]byte, 0, 32*len(calls))
	for _, c := range calls {
		for _, a := range c {
			v = binary.LittleEndian.AppendUint32(v, uint32(a))
		}
	}
	return abi.Record{Topic: "in", Key: []byte("k"), Value: v}
}

// kept is the number of results the probe keeps for calls: one per call but
// pokes.
func kept(calls []call) int {
	n := 0
	for _, c := range calls {
		if c[0] != opPoke {
			n++
		}
	}
	return n
}

// probeResults returns the results the probe kept since the instance
// started: one per call but pokes, across batches.
func probeResults(tb testing.TB, i *Instance) []int32 {
	tb.Helper()
	mem := i.guest.Memory()
	n, _ := mem.ReadUint32Le(1020)
	b, ok := mem.Read(1024, 4*n)
	if !ok {
		tb.Fatalf("results: %d past memory", n)
	}
	res := make([]int32, n)
	for k := range res {
		res[k] = int32(binary.LittleEndian.Uint32(b[4*k:]))
	}
	return res
}

// guestBytes returns a copy of n bytes of guest memory at addr.
func guestBytes(tb testing.TB, i *Instance, addr, n uint32) []byte {
	tb.Helper()
	b, ok := i.guest.Memory().Read(addr, n)
	if !ok {
		tb.Fatalf("read %d bytes at %d: outside memory", n, addr)
	}
	return bytes.Clone(b)
}
