package conformance

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/flowstate/flowstate/abi"
)

// HostSuite returns the host cases. goGuest is the Go SDK's conformance
// processor (guest/go) used by the "go:" cases; nil uses the embedded
// build.
func HostSuite(goGuest []byte) []Case {
	mods := &modules{}
	if goGuest != nil {
		mods.loaded = map[string][]byte{GoGuestModule: goGuest}
	}
	var cases []Case
	for _, c := range loadCases() {
		cases = append(cases, c.toCase(mods))
	}
	for _, c := range probeCases() {
		cases = append(cases, c.toCase(mods))
	}
	cases = append(cases, moduleCases(mods)...)
	for _, c := range goCases() {
		cases = append(cases, c.toCase(mods))
	}
	return cases
}

// entry is a store entry of s1.
func entry(k, v string) Entry { return Entry{Store: "s1", Key: []byte(k), Value: []byte(v)} }

func probeCases() []probeCase {
	opRange := op(opKVRange, hS1, 0, 0, 0, 0) // all of s1
	threeKeys := []Entry{entry("a", "aaa"), entry("b", "bbb"), entry("c", "ccc"), entry("d", "ddd")}
	entries := func(keys ...string) string {
		var b []byte
		for _, k := range keys {
			b = abi.AppendEntry(b, []byte(k), []byte(strings.Repeat(k, 3)))
		}
		return string(b)
	}
	u32 := func(v uint32) string { return string(binary.LittleEndian.AppendUint32(nil, v)) }
	epoch := uint64(time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	u64s := func(vs ...uint64) string {
		var b []byte
		for _, v := range vs {
			b = binary.LittleEndian.AppendUint64(b, v)
		}
		return string(b)
	}
	return []probeCase{
		one("store_open: declared store", []call{op(opStoreOpen, aS1, 2)}, nonneg),
		one("store_open: undeclared store", []call{op(opStoreOpen, aNope, 4)}, is(abi.NotFound)),
		one("store_open: pointer past memory", []call{op(opStoreOpen, bad, 2)}, is(abi.BadPointer)),
		one("store_open: length past memory", []call{op(opStoreOpen, memTop-1, 2)}, is(abi.BadPointer)),
		one("store_open: pointer+length overflow", []call{op(opStoreOpen, -1, 2)}, is(abi.BadPointer)),
		one("store_open: length -1", []call{op(opStoreOpen, aS1, null)}, is(abi.BadPointer)),
		one("topic_open: declared topic", []call{op(opTopicOpen, aOut, 3)}, nonneg),
		one("topic_open: undeclared topic", []call{op(opTopicOpen, aNope, 4)}, is(abi.NotFound)),
		one("topic_open: pointer past memory", []call{op(opTopicOpen, bad, 3)}, is(abi.BadPointer)),

		one("kv_get: present key", []call{op(opKVGet, hS1, aKey, 1, aBuf, 64), op(opDump, aBuf, 6)}, num(6), ok).
			checks(wantDumps("stored")),
		one("kv_get: absent key", []call{op(opKVGet, hS1, aNope, 4, aBuf, 64)}, is(abi.NotFound)),
		one("kv_get: buffer shorter than the value", append(poke(aBuf, []byte("....")), op(opKVGet, hS1, aKey, 1, aBuf, 2), op(opDump, aBuf, 4)), num(6), ok).
			checks(wantDumps("st..")),
		one("kv_get: zero capacity gives the length", []call{op(opKVGet, hS1, aKey, 1, 0, 0)}, num(6)),
		one("kv_get: unknown store handle", []call{op(opKVGet, 12345, aKey, 1, aBuf, 64)}, is(abi.BadHandle)),
		one("kv_get: negative store handle", []call{op(opKVGet, -1, aKey, 1, aBuf, 64)}, is(abi.BadHandle)),
		one("kv_get: key pointer past memory", []call{op(opKVGet, hS1, bad, 1, aBuf, 64)}, is(abi.BadPointer)),
		one("kv_get: buffer past memory", []call{op(opKVGet, hS1, aKey, 1, memTop-8, 64)}, is(abi.BadPointer)),
		one("kv_get: reads the batch's own writes", []call{op(opKVPut, hS1, aKey, 1, aVal, 5), op(opKVGet, hS1, aKey, 1, aBuf, 64)}, ok, num(5)),
		{name: "kv_get: reads earlier batches' writes", batches: []probeBatch{
			{calls: []call{op(opKVPut, hS1, aNope, 4, aVal, 5)}},
			{calls: []call{op(opKVGet, hS1, aNope, 4, aBuf, 64)}},
		}, want: []want{num(5)}},

		one("kv_put: new key", []call{op(opKVPut, hS1, aNope, 4, aVal, 5)}, ok).checks(wantStore("s1", "k", "stored", "nope", "hello")),
		one("kv_put: empty key and value", []call{op(opKVPut, hS1, 0, 0, 0, 0)}, ok).checks(wantStore("s1", "", "", "k", "stored")),
		one("kv_put: unknown store handle", []call{op(opKVPut, 7, aKey, 1, aVal, 5)}, is(abi.BadHandle)),
		one("kv_put: key pointer past memory", []call{op(opKVPut, hS1, bad, 1, aVal, 5)}, is(abi.BadPointer)),
		one("kv_put: value pointer past memory", []call{op(opKVPut, hS1, aKey, 1, bad, 5)}, is(abi.BadPointer)),
		one("kv_put: value length -1", []call{op(opKVPut, hS1, aKey, 1, aVal, null)}, is(abi.BadPointer)),
		one("kv_put: key over max_key_bytes", []call{op(opKVPut, hS1, aBigKey, 17, aVal, 5)}, is(abi.TooLarge)).
			fails(OutputRefused).checks(wantStore("s1", "k", "stored")),
		one("kv_put: value over max_value_bytes", []call{op(opKVPut, hS1, aNope, 4, aBuf, 257)}, is(abi.TooLarge)).
			fails(OutputRefused).checks(wantStore("s1", "k", "stored")),
		one("kv_put: key and value at the limits", []call{op(opKVPut, hS1, aBigKey, 16, aBuf, 256)}, ok),

		one("kv_delete: present key", []call{op(opKVDelete, hS1, aKey, 1), op(opKVGet, hS1, aKey, 1, aBuf, 64)}, ok, is(abi.NotFound)).
			checks(wantStore("s1")),
		one("kv_delete: absent key", []call{op(opKVDelete, hS1, aNope, 4)}, ok),
		one("kv_delete: unknown store handle", []call{op(opKVDelete, 3, aKey, 1)}, is(abi.BadHandle)),
		one("kv_delete: key pointer past memory", []call{op(opKVDelete, hS1, bad, 1)}, is(abi.BadPointer)),
		one("kv_delete: key over max_key_bytes", []call{op(opKVDelete, hS1, aBigKey, 17)}, is(abi.TooLarge)).fails(OutputRefused),

		one("kv_range: whole store", []call{opRange}, nonneg),
		one("kv_range: unknown store handle", []call{op(opKVRange, 99, 0, 0, 0, 0)}, is(abi.BadHandle)),
		one("kv_range: start past memory", []call{op(opKVRange, hS1, bad, 1, 0, 0)}, is(abi.BadPointer)),
		one("kv_range: end past memory", []call{op(opKVRange, hS1, 0, 0, bad, 1)}, is(abi.BadPointer)),
		one("kv_range: over max_open_iterators", []call{opRange, opRange, opRange}, nonneg, nonneg, is(abi.LimitExceeded)),
		one("kv_range: iter_close frees a slot", []call{opRange, opRange, op(opIterClose, res(first)), opRange}, ok, nonneg),

		one("iter_next: the buffer protocol", append(poke(aBuf+100, []byte("\x00\x00")),
			op(opKVRange, hS1, aB, 1, aD, 1), // first: [b, d)
			op(opIterNext, res(first), aBuf+100, 2),
			op(opIterNext, res(first), aBuf+200, 4),
			op(opIterNext, res(first), aBuf+300, 11),
			op(opIterNext, res(first), aBuf+400, 12),
			op(opIterNext, res(first), aBuf+500, 64),
			op(opIterNext, res(first), aBuf+600, 64),
			op(opIterNext, res(first), aBuf+600, 64),
			op(opDump, aBuf+100, 2), op(opDump, aBuf+200, 4), op(opDump, aBuf+400, 12), op(opDump, aBuf+500, 12)),
			nonneg, is(abi.BufferTooSmall), is(abi.BufferTooSmall), is(abi.BufferTooSmall), num(12), num(12), num(0), num(0), ok, ok, ok, ok).
			seeds(threeKeys...).
			checks(wantDumps("\x00\x00", u32(12), entries("b"), entries("c"))),
		one("iter_next: several entries per call", []call{opRange,
			op(opIterNext, res(first), aBuf, 30), op(opIterNext, res(first), aBuf+100, 64), op(opIterNext, res(first), aBuf+200, 64),
			op(opDump, aBuf, 24), op(opDump, aBuf+100, 24)},
			nonneg, num(24), num(24), num(0), ok, ok).
			seeds(threeKeys...).
			checks(wantDumps(entries("a", "b"), entries("c", "d"))),
		one("iter_next: unknown handle", []call{op(opIterNext, 12345, aBuf, 64)}, is(abi.BadHandle)),
		one("iter_next: buffer past memory", []call{opRange, op(opIterNext, res(first), bad, 64)}, nonneg, is(abi.BadPointer)),
		one("iter_next: after iter_close", []call{opRange, op(opIterClose, res(first)), op(opIterNext, res(first), aBuf, 64)}, ok, is(abi.BadHandle)),
		{name: "iter_next: iterator of an earlier batch", batches: []probeBatch{
			{calls: []call{opRange}},
			{calls: []call{op(opIterNext, res(first), aBuf, 64), op(opIterClose, res(first))}},
		}, want: []want{is(abi.BadHandle), is(abi.BadHandle)}},
		one("iter_close: open iterator", []call{opRange, op(opIterClose, res(first))}, ok),
		one("iter_close: twice", []call{opRange, op(opIterClose, res(first)), op(opIterClose, res(first))}, ok, is(abi.BadHandle)),
		one("iter_close: unknown handle", []call{op(opIterClose, -5)}, is(abi.BadHandle)),

		one("emit: key, value and headers", []call{op(opEmit, hOut, aKey, 1, aVal, 5, aHdrs, hdrsLen)}, ok).
			checks(wantOutputs(Output{Topic: "out", Key: []byte("k"), Value: []byte("hello"), Headers: []abi.Header{{Key: "h", Value: []byte("v")}}})),
		one("emit: null key and value", []call{op(opEmit, hOut, 0, null, 0, null, 0, 0)}, ok).
			checks(wantOutputs(Output{Topic: "out"})),
		one("emit: empty key and value", []call{op(opEmit, hOut, aKey, 0, aVal, 0, 0, 0)}, ok).
			checks(wantOutputs(Output{Topic: "out", Key: []byte{}, Value: []byte{}})),
		one("emit: unknown topic handle", []call{op(opEmit, 4321, aKey, 1, aVal, 5, 0, 0)}, is(abi.BadHandle)),
		one("emit: key pointer past memory", []call{op(opEmit, hOut, bad, 1, aVal, 5, 0, 0)}, is(abi.BadPointer)),
		one("emit: value pointer past memory", []call{op(opEmit, hOut, aKey, 1, bad, 5, 0, 0)}, is(abi.BadPointer)),
		one("emit: headers pointer past memory", []call{op(opEmit, hOut, aKey, 1, aVal, 5, bad, 4)}, is(abi.BadPointer)),
		one("emit: truncated headers", []call{op(opEmit, hOut, aKey, 1, aVal, 5, aBadHdrs, badHdrLen)}, is(abi.Invalid)).
			checks(wantOutputs()),
		one("emit: headers with trailing bytes", []call{op(opEmit, hOut, aKey, 1, aVal, 5, aHdrs, hdrsLen+1)}, is(abi.Invalid)),
		one("emit: key over max_key_bytes", []call{op(opEmit, hOut, aBigKey, 17, aVal, 5, 0, 0)}, is(abi.TooLarge)).fails(OutputRefused),
		one("emit: value over max_value_bytes", []call{op(opEmit, hOut, aKey, 1, aBuf, 257, 0, 0)}, is(abi.TooLarge)).fails(OutputRefused),
		one("emit: over max_output_records", slices.Repeat([]call{op(opEmit, hOut, aKey, 1, aVal, 5, 0, 0)}, 9),
			ok, ok, ok, ok, ok, ok, ok, ok, is(abi.LimitExceeded)).fails(OutputRefused),
		one("emit: value and headers over max_value_bytes", []call{op(opEmit, hOut, aKey, 1, aBuf, 250, aHdrs, hdrsLen)}, is(abi.TooLarge)).fails(OutputRefused),
		one("emit: over max_output_bytes", slices.Repeat([]call{op(opEmit, hOut, aKey, 1, aBuf, 242, aHdrs, hdrsLen)}, 3),
			ok, ok, is(abi.LimitExceeded)).fails(OutputRefused),

		one("log: every level", []call{
			op(opLog, abi.LevelDebug, aMsg, 3), op(opLog, abi.LevelInfo, aMsg, 3), op(opLog, abi.LevelWarn, aMsg, 3), op(opLog, abi.LevelError, aMsg, 3)},
			ok, ok, ok, ok).checks(wantLogs("why", "why", "why", "why")),
		one("log: unknown level", []call{op(opLog, 1, aMsg, 3)}, is(abi.Invalid)),
		one("log: message past memory", []call{op(opLog, abi.LevelInfo, bad, 3)}, is(abi.BadPointer)),
		one("fail: message and non-zero return", []call{op(opKVPut, hS1, aNope, 4, aVal, 5), op(opFail, aMsg, 3), op(opReturn, 7)}, ok, ok, ok).
			fails(GuestFailed).checks(all(wantFailure(7, "why"), wantStore("s1", "k", "stored"))),
		one("fail: message past memory", []call{op(opFail, bad, 3)}, is(abi.BadPointer)),

		one("batch: non-zero return discards writes and outputs", []call{
			op(opKVPut, hS1, aNope, 4, aVal, 5), op(opKVDelete, hS1, aKey, 1), op(opEmit, hOut, aKey, 1, aVal, 5, 0, 0), op(opReturn, 1)},
			ok, ok, ok, ok).fails(GuestFailed).checks(all(wantStore("s1", "k", "stored"), wantOutputs())),
		{name: "batch: trap discards the batch, a fresh instance runs the next", batches: []probeBatch{
			{calls: []call{op(opKVPut, hS1, aKey, 1, aVal, 5), op(opTrap)}, fail: Trap},
			{calls: []call{op(opKVGet, hS1, aKey, 1, aBuf, 64)}},
		}, want: []want{num(6)}},
		{name: "batch: endless loop stopped at call_timeout", batches: []probeBatch{
			{calls: []call{op(opKVPut, hS1, aKey, 1, aVal, 5), op(opLoop)}, fail: Timeout},
			{calls: []call{op(opKVGet, hS1, aKey, 1, aBuf, 64)}},
		}, want: []want{num(6)}, check: func(r *probeRun) error {
			if r.took > 20*probeLimits.CallTimeout {
				return fmt.Errorf("took %s with call_timeout %s", r.took, probeLimits.CallTimeout)
			}
			return nil
		}},
		{name: "batch: proc_exit discards the batch", batches: []probeBatch{
			{calls: []call{op(opKVPut, hS1, aKey, 1, aVal, 5), op(opExit, 0)}, fail: Exit},
			{calls: []call{op(opKVGet, hS1, aKey, 1, aBuf, 64)}},
		}, want: []want{num(6)}},
		one("batch: memory.grow past memory_mb fails in the guest", []call{op(opGrow, 14), op(opGrow, 1), op(opGrow, 0)}, num(2), num(-1), num(16)),
		{name: "batch: larger than memory_mb is out_of_memory", batches: []probeBatch{
			{calls: append([]call{op(opKVPut, hS1, aKey, 1, aVal, 5)}, make([]call, 40000)...), fail: OutOfMemory},
			{calls: []call{op(opKVGet, hS1, aKey, 1, aBuf, 64)}},
		}, want: []want{num(6)}},

		one("sandbox: no environment variables", []call{op(opEnvironSizes, aBuf, aBuf+4), op(opDump, aBuf, 8)}, ok, ok).
			checks(wantDumps(u32(0) + u32(0))),
		one("sandbox: no arguments", []call{op(opArgsSizes, aBuf, aBuf+4), op(opDump, aBuf, 8)}, ok, ok).
			checks(wantDumps(u32(0) + u32(0))),
		one("sandbox: no preopened directories", []call{op(opPrestatGet, 3, aBuf)}, nonzero),
		one("sandbox: no file system", []call{op(opPathOpen, 3, aPath, 3, aBuf)}, nonzero),
		one("sandbox: no sockets", []call{op(opSockAccept, 3, 0, aBuf)}, nonzero),
		one("sandbox: stdout and stderr", []call{op(opFdWrite, 1, aIOV, 1, aBuf), op(opFdWrite, 2, aIOV, 1, aBuf)}, ok, ok),
		one("sandbox: fixed wall clock", []call{op(opClock, 0, aBuf), op(opClock, 0, aBuf+8), op(opDump, aBuf, 16)}, ok, ok, ok).
			checks(wantDumps(u64s(epoch, epoch+1e6))),
	}
}

// wantLogs checks the messages the guest logged, when the host shows them.
func wantLogs(msgs ...string) func(r *probeRun) error {
	return func(r *probeRun) error {
		lr, ok := r.inst.(LogReader)
		if !ok {
			return nil
		}
		var got []string
		for _, l := range lr.Logs() {
			got = append(got, l.Message)
		}
		if fmt.Sprint(got) != fmt.Sprint(msgs) {
			return fmt.Errorf("logs %q, want %q", got, msgs)
		}
		return nil
	}
}

// wantFailure checks the code and message of the last batch's failure.
func wantFailure(code int32, msg string) func(r *probeRun) error {
	return func(r *probeRun) error {
		f, _ := errors.AsType[*Failure](r.errs[len(r.errs)-1])
		if f == nil || f.Code != code || f.Message != msg {
			return fmt.Errorf("failure %v, want code %d and message %q", f, code, msg)
		}
		return nil
	}
}

// loadCase loads a module that must be refused, or fail in _initialize.
type loadCase struct {
	name   string
	module string // embedded module; empty when wasm is set
	wasm   []byte
	lim    Limits
	want   Kind
}

func loadCases() []loadCase {
	return []loadCase{
		{name: "load: not a Wasm binary", wasm: []byte("#!/bin/sh\necho hi\n"), want: NotWasm},
		{name: "load: empty file", wasm: []byte{}, want: NotWasm},
		{name: "load: truncated module", wasm: []byte{0, 'a', 's', 'm', 1, 0, 0, 0, 1, 9, 1}, want: InvalidModule},
		{name: "load: missing flowstate_process", module: "missing_export", want: MissingExport},
		{name: "load: memory not exported", module: "no_memory", want: MissingExport},
		{name: "load: export with the wrong signature", module: "export_signature", want: ExportSignature},
		{name: "load: import from an unknown module", module: "import_env", want: UnknownImport},
		{name: "load: unknown flowstate import", module: "import_flowstate", want: UnknownImport},
		{name: "load: imported memory", module: "import_memory", want: UnknownImport},
		{name: "load: imported global and table", module: "import_global", want: UnknownImport},
		{name: "load: import with the wrong signature", module: "import_signature", want: ImportSignature},
		{name: "load: ABI version 2", module: "version2", want: ABIVersion},
		{name: "load: initial memory over memory_mb", module: "big_memory", lim: Limits{MemoryMB: 16}, want: InvalidModule},
		{name: "load: tables over the host's limit", module: "big_table", want: InvalidModule},
		{name: "load: _initialize traps", module: "init_trap", want: Trap},
		{name: "load: _initialize never returns", module: "init_loop", lim: Limits{CallTimeout: 250 * time.Millisecond}, want: Timeout},
		{name: "load: start function never returns", module: "start_loop", lim: Limits{CallTimeout: 250 * time.Millisecond}, want: Timeout},
	}
}

func (c loadCase) toCase(mods *modules) Case {
	return Case{Name: c.name, Want: "refused: " + string(c.want), run: func(ctx context.Context, h Host) (string, error) {
		wasm := c.wasm
		name := "bytes"
		if c.module != "" {
			var err error
			if wasm, err = mods.get(c.module); err != nil {
				return "", err
			}
			name = c.module
		}
		name = "conformance-" + name
		inst, err := h.Load(ctx, wasm, Setup{Name: name, Stores: []string{"s1"}, Topics: []string{"out"}, Limits: c.lim})
		if err == nil {
			inst.Close(ctx)
			return "loaded", nil
		}
		f, ok := errors.AsType[*Failure](err)
		if !ok {
			return "error", err
		}
		got := "refused: " + string(f.Kind)
		if !strings.Contains(f.Detail, name) {
			return got, fmt.Errorf("the error does not name the module %q: %s", name, f.Detail)
		}
		return got, nil
	}}
}

// moduleCases are the cases of the other WAT guests.
func moduleCases(mods *modules) []Case {
	load := func(ctx context.Context, h Host, module string, lim Limits) (Instance, error) {
		wasm, err := mods.get(module)
		if err != nil {
			return nil, err
		}
		return h.Load(ctx, wasm, Setup{Name: module, Stores: []string{"s1"}, Topics: []string{"out", "probe-results"},
			Seed: []Entry{entry("k", "stored")}, Limits: lim})
	}
	rec := abi.Record{Topic: "in", Partition: 3, Value: []byte("x")}
	return []Case{
		{
			Name: "_initialize: writes and emits are INVALID, reads work",
			Want: "≥0 INVALID INVALID INVALID 6 OK OK ≥0 ≥0",
			run: func(ctx context.Context, h Host) (string, error) {
				inst, err := load(ctx, h, "init_calls", Limits{})
				if err != nil {
					return "load: " + outcome(err), err
				}
				defer inst.Close(ctx)
				outs, err := inst.Process(ctx, []abi.Record{rec})
				if err != nil || len(outs) != 1 || len(outs[0].Value) != 36 {
					return outcome(err), fmt.Errorf("outputs %s: %v", formatOutputs(outs), err)
				}
				ws := []want{nonneg, is(abi.Invalid), is(abi.Invalid), is(abi.Invalid), num(6), ok, ok, nonneg, nonneg}
				var got []string
				for k, w := range ws {
					got = append(got, w.describe(int32(binary.LittleEndian.Uint32(outs[0].Value[4*k:]))))
				}
				return strings.Join(got, " "), nil
			},
		},
		{
			Name: "sandbox: table.grow past the host's table limit fails",
			Want: "ok",
			run: func(ctx context.Context, h Host) (string, error) {
				inst, err := load(ctx, h, "table_grow", Limits{MemoryMB: 1})
				if err != nil {
					return "load: " + outcome(err), err
				}
				defer inst.Close(ctx)
				_, err = inst.Process(ctx, []abi.Record{rec})
				if f, ok := errors.AsType[*Failure](err); ok && f.Kind == GuestFailed && f.Code == 2 {
					return "table grew by 50M elements", nil
				}
				return outcome(err), nil
			},
		},
		{
			Name: "sandbox: fresh instances see the same random bytes",
			Want: "equal",
			run: func(ctx context.Context, h Host) (string, error) {
				var got [2][]byte
				for k := range got {
					c := one("", []call{op(opRandom, aBuf, 16), op(opDump, aBuf, 16)})
					var dump []byte
					c.check = func(r *probeRun) error {
						if ds := r.dumped(0); len(ds) == 1 {
							dump = ds[0]
						}
						return nil
					}
					if _, err := c.run(ctx, h, mods); err != nil {
						return "error", err
					}
					got[k] = dump
				}
				switch {
				case len(got[0]) != 16:
					return "no random bytes", nil
				case bytes.Equal(got[0], make([]byte, 16)):
					return "zeros", nil
				case !bytes.Equal(got[0], got[1]):
					return "different", nil
				}
				return "equal", nil
			},
		},
	}
}
