package host

import (
	"errors"
	"testing"
	"time"

	"github.com/flowstate/flowstate/abi"
	"github.com/flowstate/flowstate/state"
)

// fuzzCallSize is the bytes of fuzz input one probe call takes: an op byte,
// then two bytes per argument (see fuzzArg).
const fuzzCallSize = 1 + 2*7

// fuzzMaxCalls bounds the calls of one input, so that the batch stays in
// the probe's second page and its memory does not grow.
const fuzzMaxCalls = 64

// fuzzArg turns two fuzz bytes into a probe argument: mostly values near
// the ones that matter (small handles and lengths, the data area, the end
// of memory, -1, values that wrap), so that the fuzzer reaches every
// branch of the host functions rather than only BAD_POINTER.
func fuzzArg(kind, b byte) int32 {
	switch kind % 8 {
	case 0:
		return int32(b) // a handle, a length or a level
	case 1:
		return aS1 + 16*int32(b) // the data area
	case 2:
		return memTop - int32(b) // the end of memory
	case 3:
		return -int32(b) // a negative handle or level
	case 4:
		return null
	case 5:
		return int32(b) - 8 // around the log levels
	case 6:
		return -256 + int32(b) // a pointer whose range wraps
	}
	return int32(b) << 24 // far past memory
}

// fuzzCalls decodes a fuzz input into probe calls of host functions only
// (ops 0 to 10). The buffers the host writes to (kv_get's and iter_next's)
// are kept out of the probe's results (1020 to 8191) and the batch (64 KiB
// and up), so that the results read back are the host's.
func fuzzCalls(data []byte) []call {
	var calls []call
	for len(data) >= fuzzCallSize && len(calls) < fuzzMaxCalls {
		c := call{int32(data[0] % (opFail + 1))}
		for k := range 7 {
			c[k+1] = fuzzArg(data[1+2*k], data[2+2*k])
		}
		buf := 0 // the argument that is a buffer the host writes, if any
		switch c[0] {
		case opKVGet:
			buf = 4
		case opIterNext:
			buf = 2
		}
		if buf > 0 && c[buf] >= 0 && c[buf] < aS1 {
			c[buf] += aS1
		}
		calls = append(calls, c)
		data = data[fuzzCallSize:]
	}
	return calls
}

// fuzzInput encodes calls as a fuzz input, for seeds.
func fuzzInput(calls ...[8]byte) []byte {
	var b []byte
	for _, c := range calls {
		b = append(b, c[0])
		for _, a := range c[1:] {
			b = append(b, 0, a) // kind 0: the byte itself
		}
	}
	return b
}

// FuzzHostFunctions feeds every host function random pointers, lengths,
// handles and levels from a real guest (testdata/probe.wat). No input may
// make the host panic (wazero would recover it, and the batch would fail
// with ErrInternal), fail the batch other than by refusing a write or an
// emit, or return anything but a length, a handle or an ABI error code.
func FuzzHostFunctions(f *testing.F) {
	rt := newRuntime(f, RuntimeConfig{})
	m := compile(f, rt, "probe", Limits{
		CallTimeout: 2 * time.Second, MaxKeyBytes: 64, MaxValueBytes: 256,
		MaxOutputRecords: 4, MaxOutputBytes: 1024, MaxOpenIterators: 2,
	})
	db := openDB(f, "s1", "s2")
	for _, k := range []string{"a", "b", "k"} {
		put(f, db, "s1", k, "value of "+k)
	}
	// Committed, so that discarding each input's writes keeps them.
	if err := db.Commit(state.Offsets{Changelog: map[string]int64{}, Input: map[string]int64{}}); err != nil {
		f.Fatal(err)
	}
	f.Add(fuzzInput(
		[8]byte{opKVRange, 0, 0, 0, 0, 0},
		[8]byte{opIterNext, 0, 200, 64},
		[8]byte{opIterNext, 0, 200, 3},
		[8]byte{opIterClose, 0},
		[8]byte{opIterClose, 0},
	))
	f.Add(fuzzInput(
		[8]byte{opKVPut, 0, 0, 1, 0, 3},
		[8]byte{opKVGet, 0, 0, 1, 0, 2},
		[8]byte{opKVDelete, 0, 0, 1},
		[8]byte{opEmit, 0, 0, 1, 0, 1, 0, 0},
		[8]byte{opLog, 4, 0, 5},
		[8]byte{opFail, 0, 5},
	))
	f.Fuzz(func(t *testing.T, data []byte) {
		calls := fuzzCalls(data)
		i, err := m.Instantiate(t.Context(), InstanceConfig{DB: db, Stores: []string{"s1"}, Topics: []string{"out"}})
		if err != nil {
			t.Fatal(err)
		}
		defer i.Close(t.Context())
		defer db.Discard() // the next input starts from the seeded store
		_, err = i.Process(t.Context(), []abi.Record{probeRecord(append(probeData(), calls...)...)}, nil)
		if err != nil && !errors.Is(err, ErrOutputRefused) {
			t.Fatalf("Process = %v", err)
		}
		res := probeResults(t, i)
		if want := kept(calls); len(res) != want {
			t.Fatalf("%d results for %d calls", len(res), want)
		}
		for k, r := range res {
			if r < int32(abi.Invalid) {
				t.Fatalf("call %d %v returned %d (%s)", k, calls[k], r, abi.Code(r))
			}
		}
	})
}
