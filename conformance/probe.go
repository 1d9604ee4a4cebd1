package conformance

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/flowstate/flowstate/abi"
)

// The operations of the probe guest (testdata/probe.wat).
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
	opReport
	opDump
	opEnvironSizes
	opArgsSizes
	opPathOpen
	opPrestatGet
	opSockAccept
)

// call is one probe call: an op and up to 7 i32 arguments.
type call [8]int32

// res is a probe argument that stands for the result of an earlier call:
// res(n) is the n-th result since the instance's last report, counting
// every call but pokes.
type res int32

// Results of the preamble every probe case starts with.
const (
	hS1   = res(0) // store_open("s1")
	hOut  = res(1) // topic_open("out")
	first = 2      // the result index of a case's first call
)

// op makes a probe call; each argument is an int, an int32 or a res.
func op(o int32, args ...any) call {
	c := call{o}
	for k, a := range args {
		switch a := a.(type) {
		case int:
			c[k+1] = int32(a)
		case int32:
			c[k+1] = a
		case res:
			c[k+1] = int32(a)
			c[0] |= 1 << (8 + k)
		default:
			panic(fmt.Sprintf("probe argument %d of type %T", k, a))
		}
	}
	return c
}

// Addresses of the test data the preamble writes into the probe's memory.
const (
	aS1      = 8192 // "s1"
	aOut     = 8208 // "out"
	aNope    = 8216 // "nope"
	aKey     = 8224 // "k"
	aVal     = 8232 // "hello"
	aBigKey  = 8240 // 17 bytes, over max_key_bytes
	aHdrs    = 8272 // headers h=v, hdrsLen bytes
	aBadHdrs = 8304 // a truncated headers encoding, badHdrLen bytes
	aMsg     = 8320 // "why"
	aB       = 8328 // "b"
	aD       = 8336 // "d"
	aPath    = 8344 // "etc"
	aBuf     = 9000 // free
	aIOV     = 9500 // an iovec of "hi!\n"
	aBuf2    = 9600 // free
	bad      = -256 // 0xffffff00, past memory
	null     = -1   // a null length
	memTop   = 2 << 16

	hdrsLen   = 14
	badHdrLen = 6
)

// preamble writes the test data and opens s1 and out.
func preamble() []call {
	var cs []call
	for _, d := range []struct {
		at   int32
		data string
	}{
		{aS1, "s1"}, {aOut, "out"}, {aNope, "nope"}, {aKey, "k"}, {aVal, "hello"},
		{aBigKey, "0123456789abcdefX"}, {aMsg, "why"}, {aB, "b"}, {aD, "d"}, {aPath, "etc"},
		{aHdrs, string(abi.AppendHeaders(nil, []abi.Header{{Key: "h", Value: []byte("v")}}))},
		{aBadHdrs, "\x01\x00\x00\x00\x09\x00"},
		{aBuf2 - 100, "hi!\n"},
		{aIOV, string(binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, aBuf2-100), 4))},
	} {
		cs = append(cs, poke(d.at, []byte(d.data))...)
	}
	return append(cs, op(opStoreOpen, aS1, 2), op(opTopicOpen, aOut, 3))
}

// poke returns the calls that write data at addr.
func poke(addr int32, data []byte) []call {
	var cs []call
	for off := 0; off < len(data); off += 4 {
		var w [4]byte
		copy(w[:], data[off:])
		cs = append(cs, op(opPoke, int(addr)+off, int32(binary.LittleEndian.Uint32(w[:]))))
	}
	return cs
}

// probeRecord is an input record whose value makes the probe run calls.
func probeRecord(offset int64, calls []call) abi.Record {
	v := make([]byte, 0, 32*len(calls))
	for _, c := range calls {
		for _, a := range c {
			v = binary.LittleEndian.AppendUint32(v, uint32(a))
		}
	}
	return abi.Record{Topic: "in", Partition: 3, Offset: offset, Timestamp: 1700000000000 + offset, Key: []byte("k"), Value: v}
}

// want is an expected probe result.
type want struct {
	v   int32
	how byte // '=' exactly v, 'c' exactly the code v, '+' non-negative, '!' non-zero
}

func is(c abi.Code) want { return want{v: int32(c), how: 'c'} }
func num(v int) want     { return want{v: int32(v), how: '='} }

var (
	ok      = is(abi.OK)
	nonneg  = want{how: '+'} // a handle or a length
	nonzero = want{how: '!'} // a WASI errno
)

func (w want) String() string {
	switch w.how {
	case '+':
		return "≥0"
	case '!':
		return "≠0"
	case 'c':
		return abi.Code(w.v).String()
	}
	return strconv.Itoa(int(w.v))
}

// describe renders result r the way w is rendered when r matches it.
func (w want) describe(r int32) string {
	switch w.how {
	case '+':
		if r >= 0 {
			return "≥0"
		}
		return abi.Code(r).String()
	case '!':
		if r != 0 {
			return "≠0"
		}
		return "0"
	case 'c':
		if r <= 0 {
			return abi.Code(r).String()
		}
	}
	return strconv.Itoa(int(r))
}

// probeBatch is one batch of a probe case: one record of calls.
type probeBatch struct {
	calls []call
	fail  Kind // the batch's expected failure; empty for none
}

// probeRun is what a probe case produced, for its check.
type probeRun struct {
	inst    Instance
	outputs [][]Output // per batch
	errs    []error    // per batch
	results []int32    // reported after the last batch
	took    time.Duration
}

// probeCase is a case run by the probe guest. Every batch starts with the
// preamble (so a fresh instance, after a trap, a timeout or an exit, has
// its handles again; results are counted from the instance's first call,
// so res(first) is the case's first call on that instance). After the last
// batch, unless it ended the instance, the probe reports its results; want
// lists the expected last ones.
type probeCase struct {
	name    string
	batches []probeBatch
	want    []want
	seed    []Entry // default: s1 k=stored
	check   func(r *probeRun) error
}

// probeLimits are the limits of the probe cases.
var probeLimits = Limits{
	MemoryMB:         1,
	CallTimeout:      250 * time.Millisecond,
	MaxKeyBytes:      16,
	MaxValueBytes:    256,
	MaxOutputRecords: 8,
	MaxOutputBytes:   600,
	MaxOpenIterators: 2,
}

// one is a probe case of one batch.
func one(name string, calls []call, w ...want) probeCase {
	return probeCase{name: name, batches: []probeBatch{{calls: calls}}, want: w}
}

func (c probeCase) fails(k Kind) probeCase {
	c.batches[len(c.batches)-1].fail = k
	return c
}

func (c probeCase) checks(f func(r *probeRun) error) probeCase {
	c.check = f
	return c
}

func (c probeCase) seeds(es ...Entry) probeCase {
	c.seed = es
	return c
}

// wantText renders the expected outcome: the results, then the batches'
// outcomes when one fails.
func (c probeCase) wantText() string {
	var parts []string
	for _, w := range c.want {
		parts = append(parts, w.String())
	}
	var outs []string
	failing := false
	for _, b := range c.batches {
		o := "ok"
		if b.fail != "" {
			o, failing = string(b.fail), true
		}
		outs = append(outs, o)
	}
	return render(parts, outs, failing)
}

func render(results, outcomes []string, failing bool) string {
	s := strings.Join(results, " ")
	if failing {
		if s != "" {
			s += "; "
		}
		s += strings.Join(outcomes, ", ")
	}
	if s == "" {
		s = "ok"
	}
	return s
}

// kills reports whether a failure of kind k ends the guest instance.
func kills(k Kind) bool { return k == Trap || k == Timeout || k == Exit }

func (c probeCase) toCase(mods *modules) Case {
	return Case{Name: c.name, Want: c.wantText(), run: func(ctx context.Context, h Host) (string, error) {
		return c.run(ctx, h, mods)
	}}
}

func (c probeCase) run(ctx context.Context, h Host, mods *modules) (string, error) {
	wasm, err := mods.get("probe")
	if err != nil {
		return "", err
	}
	seed := c.seed
	if seed == nil {
		seed = []Entry{{Store: "s1", Key: []byte("k"), Value: []byte("stored")}}
	}
	inst, err := h.Load(ctx, wasm, Setup{Name: "probe", Stores: []string{"s1", "s2"}, Topics: []string{"out", "probe-results"}, Seed: seed, Limits: probeLimits})
	if err != nil {
		return "load: " + outcome(err), err
	}
	defer inst.Close(context.WithoutCancel(ctx))

	r := &probeRun{inst: inst}
	var outs []string
	failing, fresh := false, true
	var offset int64
	start := time.Now()
	for k, b := range c.batches {
		calls := append(preamble(), b.calls...)
		o, err := inst.Process(ctx, []abi.Record{probeRecord(offset, calls)})
		offset++
		r.outputs, r.errs = append(r.outputs, o), append(r.errs, err)
		f, isFailure := errors.AsType[*Failure](err)
		switch {
		case err == nil:
			outs = append(outs, "ok")
		case isFailure:
			outs = append(outs, string(f.Kind))
			failing = true
		default:
			return "error", fmt.Errorf("batch %d: %w", k+1, err)
		}
		fresh = isFailure && kills(f.Kind)
	}
	r.took = time.Since(start)
	if len(c.want) > 0 && !fresh {
		o, err := inst.Process(ctx, []abi.Record{probeRecord(offset, []call{op(opReport)})})
		if err != nil {
			return "report: " + outcome(err), fmt.Errorf("report: %w", err)
		}
		for _, out := range o {
			if out.Topic == "probe-results" && string(out.Key) == "results" {
				for b := out.Value; len(b) >= 4; b = b[4:] {
					r.results = append(r.results, int32(binary.LittleEndian.Uint32(b)))
				}
			}
		}
	}
	var parts []string
	if len(c.want) > 0 {
		if len(r.results) < len(c.want) {
			return fmt.Sprintf("%d results", len(r.results)), fmt.Errorf("the probe reported %d results, want at least %d (results %v)", len(r.results), len(c.want), r.results)
		}
		got := r.results[len(r.results)-len(c.want):]
		for k, w := range c.want {
			parts = append(parts, w.describe(got[k]))
		}
	}
	got := render(parts, outs, failing)
	if c.check != nil && got == c.wantText() {
		if err := c.check(r); err != nil {
			return got, err
		}
	}
	return got, nil
}

// Checks used by probe cases.

// dumped returns the memory the probe emitted with op dump in batch b.
func (r *probeRun) dumped(b int) [][]byte {
	var ds [][]byte
	for _, o := range r.outputs[b] {
		if o.Topic == "probe-results" && string(o.Key) == "mem" {
			ds = append(ds, o.Value)
		}
	}
	return ds
}

// wantDumps checks the memory dumped in the last batch.
func wantDumps(want ...string) func(r *probeRun) error {
	return func(r *probeRun) error {
		got := r.dumped(len(r.outputs) - 1)
		if len(got) != len(want) {
			return fmt.Errorf("%d dumps, want %d", len(got), len(want))
		}
		for k := range want {
			if string(got[k]) != want[k] {
				return fmt.Errorf("dump %d is %q, want %q", k, got[k], want[k])
			}
		}
		return nil
	}
}

// wantStore checks a store's contents: key, value, key, value...
func wantStore(store string, kvs ...string) func(r *probeRun) error {
	return func(r *probeRun) error {
		es, err := r.inst.Entries(context.Background(), store)
		if err != nil {
			return err
		}
		var got []string
		for _, e := range es {
			got = append(got, string(e.Key), string(e.Value))
		}
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", kvs) {
			return fmt.Errorf("store %s holds %q, want %q", store, got, kvs)
		}
		return nil
	}
}

// wantOutputs checks the outputs of the last batch to topic "out".
func wantOutputs(want ...Output) func(r *probeRun) error {
	return func(r *probeRun) error {
		var got []Output
		for _, o := range r.outputs[len(r.outputs)-1] {
			if o.Topic == "out" {
				got = append(got, o)
			}
		}
		if formatOutputs(got) != formatOutputs(want) {
			return fmt.Errorf("outputs\n  %s\nwant\n  %s", formatOutputs(got), formatOutputs(want))
		}
		return nil
	}
}

// all runs checks in order.
func all(checks ...func(r *probeRun) error) func(r *probeRun) error {
	return func(r *probeRun) error {
		for _, c := range checks {
			if err := c(r); err != nil {
				return err
			}
		}
		return nil
	}
}

// formatOutputs renders outputs exactly, telling null from empty.
func formatOutputs(os []Output) string {
	var b strings.Builder
	for k, o := range os {
		if k > 0 {
			b.WriteString("\n  ")
		}
		fmt.Fprintf(&b, "%s key=%s value=%s", o.Topic, quote(o.Key), quote(o.Value))
		for _, h := range o.Headers {
			fmt.Fprintf(&b, " %q=%s", h.Key, quote(h.Value))
		}
	}
	return b.String()
}

// quote renders b as a Go string, or null; over 64 bytes, as its length
// and a hash.
func quote(b []byte) string {
	switch {
	case b == nil:
		return "null"
	case len(b) > 64:
		sum := sha256.Sum256(b)
		return fmt.Sprintf("<%d bytes, sha256 %x>", len(b), sum[:8])
	}
	return strconv.Quote(string(b))
}

// entries renders store entries as key=value pairs.
func entries(es []Entry) string {
	if len(es) == 0 {
		return "(empty)"
	}
	var parts []string
	for _, e := range es {
		parts = append(parts, quote(e.Key)+"="+quote(e.Value))
	}
	return strings.Join(parts, " ")
}
