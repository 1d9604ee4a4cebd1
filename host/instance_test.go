package host

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flowstate/flowstate/abi"
	"github.com/flowstate/flowstate/state"
)

func u64(n uint64) []byte { return binary.LittleEndian.AppendUint64(nil, n) }

func TestProcessCounter(t *testing.T) {
	rt := newRuntime(t, RuntimeConfig{})
	m := compile(t, rt, "counter", Limits{})
	db := openDB(t, "other", "counts")
	var logs logBuffer
	i := instantiate(t, m, InstanceConfig{DB: db, Stores: []string{"counts"}, Topics: []string{"out"}, Logger: logs.logger()})

	in := func(key string, value []byte) abi.Record {
		return abi.Record{Topic: "in", Partition: 2, Offset: 7, Timestamp: 1700000000000, Key: []byte(key), Value: value,
			Headers: []abi.Header{{Key: "x", Value: []byte("y")}, {Key: "n", Value: nil}}}
	}
	entries := func(kvs ...any) []byte {
		var b []byte
		for k := 0; k < len(kvs); k += 2 {
			b = abi.AppendEntry(b, []byte(kvs[k].(string)), u64(kvs[k+1].(uint64)))
		}
		return b
	}
	hdr := []abi.Header{{Key: "h", Value: []byte("v")}}
	batches := []struct {
		recs []abi.Record
		want []Output
	}{
		{
			recs: []abi.Record{in("a", []byte("x")), in("b", []byte{}), in("a", []byte("x"))},
			want: []Output{
				{Topic: "out", Key: []byte("a"), Value: u64(1), Headers: hdr},
				{Topic: "out", Key: []byte("b"), Value: u64(1), Headers: hdr},
				{Topic: "out", Key: []byte("a"), Value: u64(2), Headers: hdr},
				{Topic: "out", Key: []byte("range"), Value: entries("a", uint64(2), "b", uint64(1))},
			},
		},
		{
			recs: []abi.Record{in("a", []byte("x")), in("b", nil)},
			want: []Output{
				{Topic: "out", Key: []byte("a"), Value: u64(3), Headers: hdr},
				{Topic: "out", Key: []byte("b"), Value: nil},
				{Topic: "out", Key: []byte("range"), Value: entries("a", uint64(3))},
			},
		},
		{recs: nil, want: []Output{{Topic: "out", Key: []byte("range"), Value: entries("a", uint64(3))}}},
	}
	var all [][]Output
	for n, b := range batches {
		out, err := i.Process(t.Context(), b.recs, nil)
		if err != nil {
			t.Fatalf("batch %d: %v", n, err)
		}
		if got, want := fmt.Sprint(out), fmt.Sprint(b.want); got != want {
			t.Fatalf("batch %d outputs\n got %s\nwant %s", n, got, want)
		}
		all = append(all, out)
	}
	// Outputs are the host's own copies: later batches do not change them.
	if got := all[0][2].Value; !bytes.Equal(got, u64(2)) {
		t.Fatalf("first batch output changed to %x", got)
	}
	if v, ok := get(t, db, "counts", "a"); !ok || v != string(u64(3)) {
		t.Fatalf("counts[a] = %x %v", v, ok)
	}
	if _, ok := get(t, db, "counts", "b"); ok {
		t.Fatal("counts[b] not deleted")
	}
	if _, ok := get(t, db, "other", "a"); ok {
		t.Fatal("wrote to a store the instance was not given")
	}
	if got := strings.Count(logs.String(), `level=INFO msg="batch done" module=counter source=guest`); got != 3 {
		t.Fatalf("%d guest log lines, want 3:\n%s", got, logs.String())
	}
	want := Metrics{Batches: 3, Records: 5, Outputs: 8, Instantiations: 1}
	if got := i.Metrics(); got != want {
		t.Fatalf("Metrics = %+v, want %+v", got, want)
	}
	if err := i.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := i.Close(t.Context()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := i.Process(t.Context(), nil, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Process after Close: %v", err)
	}
}

// Addresses of test data in the probe's memory.
const (
	aS1       = 8192 // "s1", a store the instance has
	aS2       = 8200 // "s2", a store of the DB the instance was not given
	aOut      = 8208 // "out"
	aNope     = 8216 // "nope"
	aKey      = 8224 // "k"
	aVal      = 8232 // "hello"
	aBigKey   = 8240 // 17 bytes, over MaxKeyBytes
	aHdrs     = 8272 // a valid headers encoding
	aBadHdrs  = 8304 // a truncated headers encoding
	aMsg      = 8320 // "why"
	aBuf      = 9000 // a free buffer
	bad       = -256 // 0xffffff00, past memory
	null      = -1
	memTop    = 2 << 16 // the probe's memory size, 2 pages
	hdrsLen   = 14
	badHdrLen = 6
)

// probeData writes the test data into the probe's memory.
func probeData() []call {
	var cs []call
	for _, d := range []struct {
		at   int32
		data string
	}{
		{aS1, "s1"}, {aS2, "s2"}, {aOut, "out"}, {aNope, "nope"}, {aKey, "k"}, {aVal, "hello"},
		{aBigKey, "0123456789abcdefX"}, {aMsg, "why"},
		{aHdrs, string(abi.AppendHeaders(nil, []abi.Header{{Key: "h", Value: []byte("v")}}))},
		{aBadHdrs, "\x01\x00\x00\x00\x09\x00"},
	} {
		cs = append(cs, poke(d.at, []byte(d.data))...)
	}
	return cs
}

func TestHostFunctionCodes(t *testing.T) {
	rt := newRuntime(t, RuntimeConfig{})
	lim := Limits{MaxKeyBytes: 16, MaxValueBytes: 32, MaxOutputRecords: 2, MaxOutputBytes: 1024, MaxOpenIterators: 2, MaxWriteBytes: 60}
	m := compile(t, rt, "probe", lim)

	openS1 := op(opStoreOpen, aS1, 2) // handle 0
	tests := []struct {
		name    string
		calls   []call
		want    abi.Code // the last call's result
		wantErr error    // the batch's error
	}{
		{name: "store_open", calls: []call{openS1}, want: 0},
		{name: "store_open store not given", calls: []call{op(opStoreOpen, aS2, 2)}, want: abi.NotFound},
		{name: "store_open unknown", calls: []call{op(opStoreOpen, aNope, 4)}, want: abi.NotFound},
		{name: "store_open bad pointer", calls: []call{op(opStoreOpen, bad, 2)}, want: abi.BadPointer},
		{name: "store_open length past memory", calls: []call{op(opStoreOpen, memTop-1, 2)}, want: abi.BadPointer},
		{name: "store_open pointer overflow", calls: []call{op(opStoreOpen, -1, 2)}, want: abi.BadPointer},
		{name: "topic_open", calls: []call{op(opTopicOpen, aOut, 3)}, want: 0},
		{name: "topic_open unknown", calls: []call{op(opTopicOpen, aNope, 4)}, want: abi.NotFound},
		{name: "topic_open bad pointer", calls: []call{op(opTopicOpen, bad, 3)}, want: abi.BadPointer},

		{name: "kv_get", calls: []call{op(opKVGet, 0, aKey, 1, aBuf, 64)}, want: 6},
		{name: "kv_get absent", calls: []call{op(opKVGet, 0, aNope, 4, aBuf, 64)}, want: abi.NotFound},
		{name: "kv_get bad handle", calls: []call{op(opKVGet, 1, aKey, 1, aBuf, 64)}, want: abi.BadHandle},
		{name: "kv_get negative handle", calls: []call{op(opKVGet, -1, aKey, 1, aBuf, 64)}, want: abi.BadHandle},
		{name: "kv_get bad key pointer", calls: []call{op(opKVGet, 0, bad, 1, aBuf, 64)}, want: abi.BadPointer},
		{name: "kv_get bad buffer", calls: []call{op(opKVGet, 0, aKey, 1, memTop-8, 64)}, want: abi.BadPointer},
		{name: "kv_get length only", calls: []call{op(opKVGet, 0, aKey, 1, 0, 0)}, want: 6},

		{name: "kv_put", calls: []call{op(opKVPut, 0, aNope, 4, aVal, 5)}, want: 0},
		{name: "kv_put bad handle", calls: []call{op(opKVPut, 7, aKey, 1, aVal, 5)}, want: abi.BadHandle},
		{name: "kv_put bad key pointer", calls: []call{op(opKVPut, 0, bad, 1, aVal, 5)}, want: abi.BadPointer},
		{name: "kv_put bad value pointer", calls: []call{op(opKVPut, 0, aKey, 1, bad, 5)}, want: abi.BadPointer},
		{name: "kv_put null value", calls: []call{op(opKVPut, 0, aKey, 1, aVal, null)}, want: abi.BadPointer},
		{name: "kv_put key too large", calls: []call{op(opKVPut, 0, aBigKey, 17, aVal, 5)}, want: abi.TooLarge, wantErr: ErrOutputRefused},
		{name: "kv_put over max_write_bytes", calls: []call{op(opKVPut, 0, aKey, 1, aBuf, 32), op(opKVPut, 0, aKey, 1, aBuf, 32)}, want: abi.LimitExceeded, wantErr: ErrOutputRefused},
		{name: "kv_delete over max_write_bytes", calls: []call{op(opKVPut, 0, aKey, 1, aBuf, 32), op(opKVPut, 0, aBigKey, 16, aVal, 5), op(opKVDelete, 0, aBigKey, 16)}, want: abi.LimitExceeded, wantErr: ErrOutputRefused},
		{name: "kv_delete key too large", calls: []call{op(opKVDelete, 0, aBigKey, 17)}, want: abi.TooLarge, wantErr: ErrOutputRefused},
		{name: "kv_put value too large", calls: []call{op(opKVPut, 0, aKey, 1, aBuf, 33)}, want: abi.TooLarge, wantErr: ErrOutputRefused},

		{name: "kv_delete", calls: []call{op(opKVDelete, 0, aNope, 4)}, want: 0},
		{name: "kv_delete bad handle", calls: []call{op(opKVDelete, 3, aKey, 1)}, want: abi.BadHandle},
		{name: "kv_delete bad pointer", calls: []call{op(opKVDelete, 0, bad, 1)}, want: abi.BadPointer},

		{name: "kv_range", calls: []call{op(opKVRange, 0, 0, 0, 0, 0)}, want: 0},
		{name: "kv_range bad handle", calls: []call{op(opKVRange, 1, 0, 0, 0, 0)}, want: abi.BadHandle},
		{name: "kv_range bad start", calls: []call{op(opKVRange, 0, bad, 1, 0, 0)}, want: abi.BadPointer},
		{name: "kv_range bad end", calls: []call{op(opKVRange, 0, 0, 0, bad, 1)}, want: abi.BadPointer},
		{name: "kv_range too many iterators", calls: []call{op(opKVRange, 0, 0, 0, 0, 0), op(opKVRange, 0, 0, 0, 0, 0), op(opKVRange, 0, 0, 0, 0, 0)}, want: abi.LimitExceeded},

		{name: "iter_next bad handle", calls: []call{op(opIterNext, 12345, aBuf, 64)}, want: abi.BadHandle},
		{name: "iter_next bad buffer", calls: []call{op(opKVRange, 0, 0, 0, 0, 0), op(opIterNext, 0, bad, 64)}, want: abi.BadPointer},
		{name: "iter_close bad handle", calls: []call{op(opIterClose, -5)}, want: abi.BadHandle},
		{name: "iter_close twice", calls: []call{op(opKVRange, 0, 0, 0, 0, 0), op(opIterClose, 0), op(opIterClose, 0)}, want: abi.BadHandle},

		{name: "emit", calls: []call{op(opEmit, 0, aKey, 1, aVal, 5, aHdrs, hdrsLen)}, want: 0},
		{name: "emit bad topic", calls: []call{op(opEmit, 1, aKey, 1, aVal, 5, 0, 0)}, want: abi.BadHandle},
		{name: "emit bad key pointer", calls: []call{op(opEmit, 0, bad, 1, aVal, 5, 0, 0)}, want: abi.BadPointer},
		{name: "emit bad value pointer", calls: []call{op(opEmit, 0, aKey, 1, bad, 5, 0, 0)}, want: abi.BadPointer},
		{name: "emit bad headers pointer", calls: []call{op(opEmit, 0, aKey, 1, aVal, 5, bad, 4)}, want: abi.BadPointer},
		{name: "emit bad headers", calls: []call{op(opEmit, 0, aKey, 1, aVal, 5, aBadHdrs, badHdrLen)}, want: abi.Invalid},
		{name: "emit headers with trailing bytes", calls: []call{op(opEmit, 0, aKey, 1, aVal, 5, aHdrs, hdrsLen+1)}, want: abi.Invalid},
		{name: "emit key too large", calls: []call{op(opEmit, 0, aBigKey, 17, aVal, 5, 0, 0)}, want: abi.TooLarge, wantErr: ErrOutputRefused},
		{name: "emit too many records", calls: []call{op(opEmit, 0, aKey, 1, aVal, 5, 0, 0), op(opEmit, 0, aKey, 1, aVal, 5, 0, 0), op(opEmit, 0, aKey, 1, aVal, 5, 0, 0)},
			want: abi.LimitExceeded, wantErr: ErrOutputRefused},

		{name: "log", calls: []call{op(opLog, abi.LevelWarn, aMsg, 3)}, want: 0},
		{name: "log unknown level", calls: []call{op(opLog, 1, aMsg, 3)}, want: abi.Invalid},
		{name: "log bad pointer", calls: []call{op(opLog, abi.LevelInfo, bad, 3)}, want: abi.BadPointer},
		{name: "fail", calls: []call{op(opFail, aMsg, 3)}, want: 0},
		{name: "fail bad pointer", calls: []call{op(opFail, bad, 3)}, want: abi.BadPointer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A fresh store and instance per case: iterator handles start
			// at 0.
			db := openDB(t, "s1", "s2")
			put(t, db, "s1", "k", "stored")
			i := instantiate(t, m, InstanceConfig{DB: db, Stores: []string{"s1"}, Topics: []string{"out"}})
			calls := append(probeData(), tt.calls...)
			_, err := i.Process(t.Context(), []abi.Record{probeRecord(calls...)}, nil)
			if !errors.Is(err, tt.wantErr) || (err != nil && tt.wantErr == nil) {
				t.Fatalf("Process = %v, want %v", err, tt.wantErr)
			}
			res := probeResults(t, i)
			if len(res) != kept(calls) {
				t.Fatalf("%d results for %d calls", len(res), kept(calls))
			}
			if got := abi.Code(res[len(res)-1]); got != tt.want {
				t.Fatalf("result %d (%s), want %d (%s)", got, got, tt.want, tt.want)
			}
			if got := i.Metrics().Instantiations; got != 1 {
				t.Fatalf("%d instantiations: a bad argument must not kill the guest", got)
			}
		})
	}
}

func TestKVGetPartialCopy(t *testing.T) {
	rt := newRuntime(t, RuntimeConfig{})
	m := compile(t, rt, "probe", Limits{})
	db := openDB(t, "s1")
	i := instantiate(t, m, InstanceConfig{DB: db, Stores: []string{"s1"}})

	calls := append(probeData(), poke(aBuf, []byte("............"))...)
	calls = append(calls,
		op(opKVPut, 0, aKey, 1, aVal, 5),    // read-your-writes within the batch
		op(opKVGet, 0, aKey, 1, aBuf, 2),    // copies "he", returns 5
		op(opKVGet, 0, aKey, 1, aBuf+4, 64), // copies "hello"
	)
	if _, err := i.Process(t.Context(), []abi.Record{probeRecord(calls...)}, nil); err != nil {
		t.Fatal(err)
	}
	res := probeResults(t, i)
	if got := res[len(res)-2:]; got[0] != 5 || got[1] != 5 {
		t.Fatalf("kv_get returned %v, want 5 5", got)
	}
	if got := string(guestBytes(t, i, aBuf, 10)); got != "he..hello." {
		t.Fatalf("buffer = %q", got)
	}
}

func TestIterNextProtocol(t *testing.T) {
	rt := newRuntime(t, RuntimeConfig{})
	m := compile(t, rt, "probe", Limits{})
	db := openDB(t, "s1")
	for _, k := range []string{"a", "b", "c", "d"} {
		put(t, db, "s1", k, strings.Repeat(k, 3))
	}
	i := instantiate(t, m, InstanceConfig{DB: db, Stores: []string{"s1"}})
	entry := abi.EntrySize([]byte("a"), []byte("aaa")) // 12

	// Range [b, d): b and c.
	calls := append(probeData(), poke(aBuf, []byte("b\x00\x00\x00d"))...)
	calls = append(calls,
		op(opKVRange, 0, aBuf, 1, aBuf+4, 1),   // 0: handle 0
		op(opIterNext, 0, aBuf+100, 2),         // 1: too small, cap < 4: nothing written
		op(opIterNext, 0, aBuf+200, 4),         // 2: too small, size written
		op(opIterNext, 0, aBuf+300, 11),        // 3: still too small
		op(opIterNext, 0, aBuf+400, 12),        // 4: exactly b
		op(opIterNext, 0, aBuf+500, int32(64)), // 5: c
		op(opIterNext, 0, aBuf+600, 64),        // 6: exhausted
		op(opIterNext, 0, aBuf+600, 64),        // 7: still exhausted
		op(opKVRange, 0, 0, 0, 0, 0),           // 8: handle 1, all keys
		op(opIterNext, 1, aBuf+700, 30),        // 9: a and b fit, c does not
		op(opKVPut, 0, aKey, 1, aVal, 5),       // 10: a write between calls
		op(opIterNext, 1, aBuf+800, 64),        // 11: c and d, from the copy kept for c
		op(opKVRange, 0, 0, 0, 0, 0),           // 12: left open: the host closes it
	)
	if _, err := i.Process(t.Context(), []abi.Record{probeRecord(calls...)}, nil); err != nil {
		t.Fatal(err)
	}
	res := probeResults(t, i) // the pokes keep no result
	want := []int32{0, int32(abi.BufferTooSmall), int32(abi.BufferTooSmall), int32(abi.BufferTooSmall), int32(entry), int32(entry), 0, 0, 1, int32(2 * entry), 0, int32(2 * entry), 2}
	if fmt.Sprint(res) != fmt.Sprint(want) {
		t.Fatalf("results %v, want %v", res, want)
	}
	if got := guestBytes(t, i, aBuf+100, 2); !bytes.Equal(got, []byte{0, 0}) {
		t.Fatalf("cap 2 buffer written: %x", got)
	}
	if got := binary.LittleEndian.Uint32(guestBytes(t, i, aBuf+200, 4)); got != uint32(entry) {
		t.Fatalf("needed size %d, want %d", got, entry)
	}
	wantEntries := func(kvs ...string) []byte {
		var b []byte
		for k := 0; k < len(kvs); k++ {
			b = abi.AppendEntry(b, []byte(kvs[k]), []byte(strings.Repeat(kvs[k], 3)))
		}
		return b
	}
	for _, c := range []struct {
		at   uint32
		want []byte
	}{
		{aBuf + 400, wantEntries("b")},
		{aBuf + 500, wantEntries("c")},
		{aBuf + 700, wantEntries("a", "b")},
		{aBuf + 800, wantEntries("c", "d")},
	} {
		if got := guestBytes(t, i, c.at, uint32(len(c.want))); !bytes.Equal(got, c.want) {
			t.Errorf("entries at %d = %q, want %q", c.at, got, c.want)
		}
	}

	// The iterators of the last batch are closed.
	if _, err := i.Process(t.Context(), []abi.Record{probeRecord(op(opIterNext, 2, aBuf, 64), op(opIterClose, 1))}, nil); err != nil {
		t.Fatal(err)
	}
	if second := probeResults(t, i)[len(res):]; second[0] != int32(abi.BadHandle) || second[1] != int32(abi.BadHandle) {
		t.Fatalf("stale iterator handles gave %v", second)
	}
}

func TestEmit(t *testing.T) {
	rt := newRuntime(t, RuntimeConfig{})
	m := compile(t, rt, "probe", Limits{})
	db := openDB(t, "s1")
	i := instantiate(t, m, InstanceConfig{DB: db, Topics: []string{"t0", "out"}})
	calls := append(probeData(),
		op(opEmit, 1, 0, null, 0, null, 0, 0),                // null key, null value
		op(opEmit, 1, aKey, 0, aVal, 0, 0, 0),                // empty key, empty value
		op(opEmit, 0, aKey, 1, aVal, 5, aHdrs, hdrsLen),      // with headers
		op(opEmit, 0, aKey, 1, aVal, 5, aBadHdrs, badHdrLen), // refused: not queued
	)
	prior := []Output{{Topic: "earlier"}}
	out, err := i.Process(t.Context(), []abi.Record{probeRecord(calls...)}, prior)
	if err != nil {
		t.Fatal(err)
	}
	want := []Output{
		{Topic: "earlier"},
		{Topic: "out"},
		{Topic: "out", Key: []byte{}, Value: []byte{}},
		{Topic: "t0", Key: []byte("k"), Value: []byte("hello"), Headers: []abi.Header{{Key: "h", Value: []byte("v")}}},
	}
	if fmt.Sprintf("%#v", out) != fmt.Sprintf("%#v", want) {
		t.Fatalf("outputs\n got %#v\nwant %#v", out, want)
	}
}

func TestFailedBatch(t *testing.T) {
	rt := newRuntime(t, RuntimeConfig{})
	lim := Limits{CallTimeout: 200 * time.Millisecond, MaxOutputRecords: 1}
	m := compile(t, rt, "probe", lim)

	// Each batch: record 1 writes k and emits; record 2 fails the batch.
	tests := []struct {
		name     string
		fail     []call
		want     error
		code     int32
		message  string
		restarts bool // the guest is replaced
	}{
		{name: "returns non-zero", fail: []call{op(opFail, aMsg, 3), op(opReturn, 7)}, code: 7, message: "why"},
		{name: "trap", fail: []call{op(opFail, aMsg, 3), op(opTrap)}, want: ErrTrap, message: "why", restarts: true},
		{name: "timeout", fail: []call{op(opLoop)}, want: ErrTimeout, restarts: true},
		{name: "proc_exit", fail: []call{op(opExit, 3)}, want: ErrExit, restarts: true},
		{name: "proc_exit 0", fail: []call{op(opExit, 0)}, want: ErrExit, restarts: true},
		{name: "output limit", fail: []call{op(opEmit, 0, aKey, 1, aVal, 5, 0, 0)}, want: ErrOutputRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openDB(t, "s1")
			put(t, db, "s1", "k", "before")
			i := instantiate(t, m, InstanceConfig{DB: db, Stores: []string{"s1"}, Topics: []string{"out"}})
			recs := []abi.Record{
				probeRecord(append(probeData(), op(opKVPut, 0, aKey, 1, aVal, 5), op(opKVDelete, 0, aKey, 1), op(opKVPut, 0, aNope, 4, aVal, 5),
					op(opEmit, 0, aKey, 1, aVal, 5, 0, 0))...),
				probeRecord(tt.fail...),
			}
			prior := []Output{{Topic: "earlier"}}
			start := time.Now()
			out, err := i.Process(t.Context(), recs, prior)
			t.Log(err)
			var ge *GuestError
			if !errors.As(err, &ge) {
				t.Fatalf("Process = %v, want a *GuestError", err)
			}
			if (tt.want == nil) != (ge.Err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) || ge.Code != tt.code || ge.Message != tt.message || ge.Module != "probe" {
				t.Fatalf("GuestError %+v, want Err %v, Code %d, Message %q", ge, tt.want, tt.code, tt.message)
			}
			if tt.want == ErrTimeout && time.Since(start) > 5*lim.CallTimeout {
				t.Fatalf("stopped after %s, CallTimeout %s", time.Since(start), lim.CallTimeout)
			}
			if len(out) != 1 || out[0].Topic != "earlier" {
				t.Fatalf("outputs of the failed batch kept: %+v", out)
			}
			if cap(out) > 1 && out[:2][1].Topic != "" {
				t.Fatalf("dropped outputs still referenced: %+v", out[:2])
			}
			if v, ok := get(t, db, "s1", "k"); !ok || v != "before" {
				t.Fatalf("k = %q %v after rollback, want before", v, ok)
			}
			if _, ok := get(t, db, "s1", "nope"); ok {
				t.Fatal("write of the failed batch not rolled back")
			}

			// The next batch runs, on a fresh guest if the last one died.
			out, err = i.Process(t.Context(), []abi.Record{probeRecord(append(probeData(), op(opKVPut, 0, aKey, 1, aVal, 5))...)}, nil)
			if err != nil {
				t.Fatalf("next batch: %v", err)
			}
			if v, _ := get(t, db, "s1", "k"); v != "hello" {
				t.Fatalf("k = %q after the next batch", v)
			}
			wantInst := int64(1)
			if tt.restarts {
				wantInst = 2
			}
			if got := i.Metrics(); got.Instantiations != wantInst || got.FailedBatches != 1 || got.Batches != 2 {
				t.Fatalf("Metrics = %+v, want %d instantiations", got, wantInst)
			}
		})
	}
}

func TestCallerContextEnds(t *testing.T) {
	rt := newRuntime(t, RuntimeConfig{})
	m := compile(t, rt, "probe", Limits{CallTimeout: time.Minute})
	db := openDB(t, "s1")
	i := instantiate(t, m, InstanceConfig{DB: db, Stores: []string{"s1"}})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := i.Process(ctx, []abi.Record{probeRecord(append(probeData(), op(opKVPut, 0, aKey, 1, aVal, 5), op(opLoop))...)}, nil)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrTimeout) {
		t.Fatalf("Process = %v, want the caller's context.DeadlineExceeded", err)
	}
	if _, ok := get(t, db, "s1", "k"); ok {
		t.Fatal("write not rolled back")
	}
	if _, err := i.Process(t.Context(), []abi.Record{probeRecord()}, nil); err != nil {
		t.Fatalf("next batch: %v", err)
	}
}

func TestMemoryLimit(t *testing.T) {
	rt := newRuntime(t, RuntimeConfig{})
	m := compile(t, rt, "probe", Limits{MemoryMB: 1})
	db := openDB(t, "s1")
	i := instantiate(t, m, InstanceConfig{DB: db, Stores: []string{"s1"}})

	// memory.grow past the limit fails in the guest.
	if _, err := i.Process(t.Context(), []abi.Record{probeRecord(op(opGrow, 14), op(opGrow, 1), op(opGrow, 0))}, nil); err != nil {
		t.Fatal(err)
	}
	if res := probeResults(t, i); fmt.Sprint(res) != "[2 -1 16]" {
		t.Fatalf("memory.grow results %v, want [2 -1 16] (pages before, or -1)", res)
	}

	// A batch larger than the memory limit cannot be allocated.
	big := probeRecord(op(opKVPut, 0, aKey, 1, aVal, 5))
	big.Key = make([]byte, 1<<20)
	_, err := i.Process(t.Context(), []abi.Record{big}, nil)
	var ge *GuestError
	if !errors.As(err, &ge) || !errors.Is(err, ErrOutOfMemory) {
		t.Fatalf("Process of a 1 MiB batch = %v, want ErrOutOfMemory", err)
	}
	t.Log(err)
	if _, err := i.Process(t.Context(), []abi.Record{probeRecord(op(opGrow, 0))}, nil); err != nil {
		t.Fatalf("next batch: %v", err)
	}
}

func TestSandbox(t *testing.T) {
	rt := newRuntime(t, RuntimeConfig{})
	m := compile(t, rt, "probe", Limits{})
	var logs logBuffer
	type result struct {
		codes  []int32
		random []byte
		clock  [2]uint64 // ns since the Unix epoch
	}
	run := func(calls ...call) result {
		db := openDB(t, "s1")
		i := instantiate(t, m, InstanceConfig{DB: db, Logger: logs.logger()})
		if _, err := i.Process(t.Context(), []abi.Record{probeRecord(calls...)}, nil); err != nil {
			t.Fatal(err)
		}
		clock := guestBytes(t, i, aBuf+100, 16)
		return result{
			codes:  probeResults(t, i),
			random: guestBytes(t, i, aBuf, 12),
			clock:  [2]uint64{binary.LittleEndian.Uint64(clock), binary.LittleEndian.Uint64(clock[8:])},
		}
	}
	calls := append(poke(aMsg, []byte("hi!\n")),
		op(opPoke, aBuf+50, aMsg), op(opPoke, aBuf+54, 4), // iovec
		op(opFdWrite, 1, aBuf+50, 1, aBuf+58), // stdout
		op(opFdWrite, 2, aBuf+50, 1, aBuf+58), // stderr
		op(opRandom, aBuf, 12),
		op(opClock, 0, aBuf+100), // realtime
		op(opClock, 0, aBuf+108),
	)
	first, second := run(calls...), run(calls...)
	if fmt.Sprint(first) != fmt.Sprint(second) {
		t.Fatalf("two fresh instances differ:\n%v\n%v", first, second)
	}
	if fmt.Sprint(first.codes[len(first.codes)-5:]) != "[0 0 0 0 0]" {
		t.Fatalf("WASI calls returned %v", first.codes)
	}
	if bytes.Equal(first.random, make([]byte, 12)) {
		t.Fatal("random_get wrote nothing")
	}
	// A fixed clock: 2022-01-01T00:00:00Z, advancing 1 ms per reading.
	epoch := uint64(time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	if first.clock != [2]uint64{epoch, epoch + 1e6} {
		t.Fatalf("clock readings %v, want %d and 1 ms later", first.clock, epoch)
	}
	for _, s := range []string{`msg="guest output" module=probe stream=stdout text=hi!`, `stream=stderr text=hi!`} {
		if !strings.Contains(logs.String(), s) {
			t.Fatalf("log lacks %q:\n%s", s, logs.String())
		}
	}
}

func TestInitializeCannotWrite(t *testing.T) {
	rt := newRuntime(t, RuntimeConfig{})
	m := compile(t, rt, "init_write", Limits{})
	db := openDB(t, "s1")
	put(t, db, "s1", "k", "stored")
	i := instantiate(t, m, InstanceConfig{DB: db, Stores: []string{"s1"}, Topics: []string{"out"}})
	var got []int32
	for k := range 5 {
		got = append(got, int32(binary.LittleEndian.Uint32(guestBytes(t, i, uint32(4*k), 4))))
	}
	want := []int32{0, int32(abi.Invalid), int32(abi.Invalid), int32(abi.Invalid), 6}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("store_open, kv_put, kv_delete, emit, kv_get in _initialize = %v, want %v", got, want)
	}
}

// TestConcurrentInstances hammers one Runtime from many goroutines, each
// compiling (several memory limits, so several wazero runtimes) and running
// its own instance, as the tasks of a process do.
func TestConcurrentInstances(t *testing.T) {
	rt := newRuntime(t, RuntimeConfig{})
	wasm := wasmOf(t, "counter")
	const workers = 8
	errc := make(chan error, workers)
	for w := range workers {
		db := openDB(t, "counts")
		go func() {
			errc <- func() error {
				m, err := rt.Compile(t.Context(), "counter", wasm, Limits{MemoryMB: 1 + w%3})
				if err != nil {
					return err
				}
				i, err := m.Instantiate(t.Context(), InstanceConfig{DB: db, Stores: []string{"counts"}, Topics: []string{"out"}})
				if err != nil {
					return err
				}
				defer i.Close(context.Background())
				recs := []abi.Record{{Topic: "in", Key: []byte("a"), Value: []byte("x")}}
				for range 50 {
					if _, err := i.Process(t.Context(), recs, nil); err != nil {
						return err
					}
				}
				if v, _, err := db.Get(0, []byte("a")); err != nil || !bytes.Equal(v, u64(50)) {
					return fmt.Errorf("worker %d: count %x, %v", w, v, err)
				}
				return nil
			}()
		}()
	}
	for range workers {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
}

func TestHostSideError(t *testing.T) {
	rt := newRuntime(t, RuntimeConfig{})
	m := compile(t, rt, "probe", Limits{})
	db := openDB(t, "s1")
	i := instantiate(t, m, InstanceConfig{DB: db, Stores: []string{"s1"}})
	db.Close()
	// The guest ignores the INTERNAL and returns 0; the batch fails anyway.
	_, err := i.Process(t.Context(), []abi.Record{probeRecord(append(probeData(), op(opKVGet, 0, aKey, 1, aBuf, 8))...)}, nil)
	if !errors.Is(err, ErrInternal) || !errors.Is(err, state.ErrClosed) {
		t.Fatalf("Process = %v, want ErrInternal wrapping state.ErrClosed", err)
	}
	if res := probeResults(t, i); abi.Code(res[len(res)-1]) != abi.Internal {
		t.Fatalf("kv_get returned %d", res[len(res)-1])
	}
	if !abi.Internal.Retryable() {
		t.Fatal("INTERNAL should be retryable")
	}
}

func TestProcessCanceledContext(t *testing.T) {
	rt := newRuntime(t, RuntimeConfig{})
	m := compile(t, rt, "probe", Limits{})
	i := instantiate(t, m, InstanceConfig{DB: openDB(t, "s1")})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := i.Process(ctx, nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Process = %v", err)
	}
	if got := i.Metrics(); got.Batches != 0 || got.Instantiations != 1 {
		t.Fatalf("Metrics = %+v: a canceled call should not touch the guest", got)
	}
}
