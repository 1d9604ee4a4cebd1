package host

import (
	"errors"
	"fmt"
)

// Interrupting a guest. A guest call must stop at Limits.CallTimeout even in
// a loop without host calls. wazero's WithCloseOnContextDone does that by
// leaving the compiled code for Go at every loop header, and Go's wasm code
// enters a loop header on every function call: measured here, that doubled
// the time of a Go guest's batch. Instead, like Wasmtime's epoch
// interruption, Compile rewrites the module so that every loop header
// counts, and every yieldEvery-th time leaves for Go and reads a global the
// host sets when the call's context ends:
//
//	loop ...                  ;; the guest's loop
//	  global.get $n           ;; added: $n++
//	  i32.const 1
//	  i32.add
//	  global.set $n
//	  global.get $n           ;; every yieldEvery-th time:
//	  i32.const yieldEvery-1
//	  i32.and
//	  i32.eqz
//	  if
//	    i32.const 0           ;; memory.grow 0 leaves the compiled code for
//	    memory.grow 0         ;; Go: a point where the Go scheduler can stop
//	    drop                  ;; the goroutine for a garbage collection
//	    global.get $stop
//	    if
//	      unreachable         ;; traps, failing the call
//	    end
//	  end
//	  ...
//
// The trip to Go matters as much as the flag: Go cannot preempt a goroutine
// running compiled Wasm, so a loop that never left it would hold up every
// stop-the-world of the process, the timer that sets $stop included.
// $stop is a new mutable i32 global, exported as interruptExport, so the
// host can set it from a timer goroutine while the guest runs; the compiled
// code loads it from the instance's memory on every read, and a trap after
// the host set it is reported as a timeout. A start function, which would
// run inside instantiation before the host can reach $stop, is taken out of
// the start section and exported as startExport; the Instance calls it
// under the timeout. A module the rewrite does not understand (an
// instruction of a proposal wazero's compiler or this decoder lacks, such as
// exceptions or typed function references) keeps wazero's context check
// instead: it runs slower, never unbounded.

const (
	interruptExport = "__flowstate_interrupt"
	startExport     = "__flowstate_start"
	// yieldEvery is how many loop iterations run between two trips to Go,
	// a power of two. A trip costs about as much as wazero's per-iteration
	// context check; a loop iteration of a few instructions takes a few
	// nanoseconds, so a trip comes every few microseconds.
	yieldEvery = 1 << 12
)

// Section ids read or written by instrument, besides those of wasmcheck.go.
const (
	sectionCustom    = 0
	sectionGlobal    = 6
	sectionExport    = 7
	sectionStart     = 8
	sectionElement   = 9
	sectionCode      = 10
	sectionData      = 11
	sectionDataCount = 12

	exportFunc   = 0
	exportGlobal = 3
)

// errCannotInstrument is returned by instrument for a module it leaves to
// wazero's context check.
var errCannotInstrument = errors.New("cannot instrument")

// instrumented is a module rewritten by instrument.
type instrumented struct {
	wasm []byte
	// hasStart is set when the module had a start function, now exported
	// as startExport.
	hasStart bool
}

type section struct {
	id   byte
	body []byte
}

// instrument returns wasm with the interrupt check at every loop header,
// the $stop global exported as interruptExport, and a start function moved
// to the export startExport. It returns an error wrapping
// errCannotInstrument for a module it cannot rewrite.
func instrument(wasm []byte) (instrumented, error) {
	if len(wasm) < len(wasmHeader) {
		return instrumented{}, fmt.Errorf("%w: too short", errCannotInstrument)
	}
	var secs []section
	r := reader{b: wasm[len(wasmHeader):]}
	for len(r.b) > 0 {
		id := r.byte()
		body := r.bytes(r.u32())
		if r.bad {
			return instrumented{}, fmt.Errorf("%w: truncated section", errCannotInstrument)
		}
		secs = append(secs, section{id, body})
	}

	var importedGlobals, definedGlobals, memories uint32
	var res instrumented
	var startFunc uint32
	for _, s := range secs {
		var err error
		switch s.id {
		case sectionImport:
			var mems uint32
			importedGlobals, mems, err = countImports(s.body)
			memories += mems
		case sectionGlobal:
			gr := reader{b: s.body}
			definedGlobals = gr.u32()
			if gr.bad {
				err = errors.New("bad global count")
			}
		case 5: // memory
			mr := reader{b: s.body}
			memories += mr.u32()
		case sectionExport:
			err = checkExportNames(s.body)
		case sectionStart:
			sr := reader{b: s.body}
			startFunc = sr.u32()
			res.hasStart = true
			if sr.bad || len(sr.b) != 0 {
				err = errors.New("bad start section")
			}
		}
		if err != nil {
			return instrumented{}, fmt.Errorf("%w: %w", errCannotInstrument, err)
		}
	}
	if memories == 0 {
		// memory.grow needs a memory; the host refuses a module without
		// one anyway.
		return instrumented{}, fmt.Errorf("%w: no memory", errCannotInstrument)
	}
	stop := importedGlobals + definedGlobals // then $n at stop+1

	exports := appendName(nil, interruptExport)
	exports = append(exports, exportGlobal)
	exports = appendU32(exports, stop)
	nExports := uint32(1)
	if res.hasStart {
		exports = appendName(exports, startExport)
		exports = append(exports, exportFunc)
		exports = appendU32(exports, startFunc)
		nExports++
	}
	// $stop and $n: (mut i32) initialized to i32.const 0.
	newGlobals := []byte{0x7f, 0x01, 0x41, 0x00, 0x0b, 0x7f, 0x01, 0x41, 0x00, 0x0b}
	const nNew = 2

	out := append(make([]byte, 0, len(wasm)+len(wasm)/16+64), wasm[:len(wasmHeader)]...)
	globalDone, exportDone := false, false
	for _, s := range secs {
		// A missing global or export section is added where the binary
		// format orders it: before the first later section.
		if !globalDone && later(s.id, sectionGlobal) {
			out = appendSection(out, sectionGlobal, append(appendU32(nil, nNew), newGlobals...))
			globalDone = true
		}
		if !exportDone && later(s.id, sectionExport) {
			out = appendSection(out, sectionExport, append(appendU32(nil, nExports), exports...))
			exportDone = true
		}
		switch s.id {
		case sectionGlobal:
			gr := reader{b: s.body}
			gr.u32()
			body := append(appendU32(nil, definedGlobals+nNew), gr.b...)
			out = appendSection(out, s.id, append(body, newGlobals...))
			globalDone = true
		case sectionExport:
			er := reader{b: s.body}
			n := er.u32()
			body := append(appendU32(nil, n+nExports), er.b...)
			out = appendSection(out, s.id, append(body, exports...))
			exportDone = true
		case sectionStart:
			// Dropped: exported as startExport above.
		case sectionCode:
			body, err := instrumentCode(s.body, stop)
			if err != nil {
				return instrumented{}, fmt.Errorf("%w: %w", errCannotInstrument, err)
			}
			out = appendSection(out, s.id, body)
		default:
			out = appendSection(out, s.id, s.body)
		}
	}
	if !globalDone {
		out = appendSection(out, sectionGlobal, append(appendU32(nil, nNew), newGlobals...))
	}
	if !exportDone {
		out = appendSection(out, sectionExport, append(appendU32(nil, nExports), exports...))
	}
	res.wasm = out
	return res, nil
}

// sectionOrder is the position of each non-custom section id in a module.
var sectionOrder = map[byte]int{
	1: 1, sectionImport: 2, 3: 3, sectionTable: 4, 5: 5, 13: 6, sectionGlobal: 7, sectionExport: 8,
	sectionStart: 9, sectionElement: 10, sectionDataCount: 11, sectionCode: 12, sectionData: 13,
}

// later reports whether a section with id comes after one with id want.
func later(id, want byte) bool {
	if id == sectionCustom {
		return false
	}
	return sectionOrder[id] > sectionOrder[want]
}

func appendSection(dst []byte, id byte, body []byte) []byte {
	dst = append(dst, id)
	dst = appendU32(dst, uint32(len(body)))
	return append(dst, body...)
}

func appendName(dst []byte, s string) []byte {
	return append(appendU32(dst, uint32(len(s))), s...)
}

// countImports returns the number of imported globals and memories.
func countImports(body []byte) (globals, memories uint32, err error) {
	r := reader{b: body}
	n := r.u32()
	for range n {
		r.name()
		r.name()
		switch r.byte() {
		case importFunc:
			r.u32()
		case importTable:
			r.byte()
			r.limits()
		case importMemory:
			r.limits()
			memories++
		case importGlobal:
			r.byte()
			r.byte()
			globals++
		case importTag:
			r.byte()
			r.u32()
		default:
			return 0, 0, errors.New("unknown import kind")
		}
	}
	if r.bad {
		return 0, 0, errors.New("truncated import section")
	}
	return globals, memories, nil
}

// checkExportNames refuses a module that already uses the export names
// instrument adds.
func checkExportNames(body []byte) error {
	r := reader{b: body}
	n := r.u32()
	for range n {
		name := r.name()
		r.byte()
		r.u32()
		if name == interruptExport || name == startExport {
			return fmt.Errorf("the module exports %s itself", name)
		}
	}
	if r.bad {
		return errors.New("truncated export section")
	}
	return nil
}

// loopCheck returns the instructions added at each loop header (see the top
// of this file), for the globals $stop and $n = stop+1.
func loopCheck(stop uint32) []byte {
	n := stop + 1
	b := appendU32([]byte{0x23}, n)             // global.get $n
	b = append(b, 0x41, 0x01, 0x6a, 0x24)       // i32.const 1; i32.add; global.set
	b = appendU32(b, n)                         //   $n
	b = appendU32(append(b, 0x23), n)           // global.get $n
	b = append(b, 0x41)                         // i32.const
	b = appendS32(b, yieldEvery-1)              //   yieldEvery-1
	b = append(b, 0x71, 0x45, 0x04, 0x40)       // i32.and; i32.eqz; if
	b = append(b, 0x41, 0x00, 0x40, 0x00, 0x1a) //   i32.const 0; memory.grow 0; drop
	b = appendU32(append(b, 0x23), stop)        //   global.get $stop
	b = append(b, 0x04, 0x40, 0x00, 0x0b)       //   if; unreachable; end
	return append(b, 0x0b)                      // end
}

// appendS32 appends v as a signed LEB128.
func appendS32(dst []byte, v int32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(dst, c)
		}
		dst = append(dst, c|0x80)
	}
}

// instrumentCode rewrites the code section: every function body gets the
// loop check, with the globals from stop, after each loop instruction.
func instrumentCode(body []byte, stop uint32) ([]byte, error) {
	check := loopCheck(stop)

	r := reader{b: body}
	n := r.u32()
	out := appendU32(make([]byte, 0, len(body)+len(body)/8), n)
	var fn []byte
	for k := range n {
		code := r.bytes(r.u32())
		if r.bad {
			return nil, fmt.Errorf("function %d: truncated", k)
		}
		var err error
		fn, err = instrumentFunc(fn[:0], code, check)
		if err != nil {
			return nil, fmt.Errorf("function %d: %w", k, err)
		}
		out = appendU32(out, uint32(len(fn)))
		out = append(out, fn...)
	}
	if len(r.b) != 0 {
		return nil, errors.New("trailing bytes after the function bodies")
	}
	return out, nil
}

// instrumentFunc appends to dst the function body code with check after
// every loop instruction.
func instrumentFunc(dst, code, check []byte) ([]byte, error) {
	r := reader{b: code}
	groups := r.u32()
	for range groups {
		r.u32()
		if t := r.byte(); !isValType(t) {
			return nil, fmt.Errorf("local of type %#x", t)
		}
	}
	if r.bad {
		return nil, errors.New("truncated locals")
	}
	dst = append(dst, code[:len(code)-len(r.b)]...)
	for len(r.b) > 0 {
		start := len(code) - len(r.b)
		op := r.byte()
		if err := skipImmediates(&r, op); err != nil {
			return nil, fmt.Errorf("at byte %d: %w", start, err)
		}
		if r.bad {
			return nil, fmt.Errorf("at byte %d: truncated instruction %#x", start, op)
		}
		dst = append(dst, code[start:len(code)-len(r.b)]...)
		if op == 0x03 { // loop
			dst = append(dst, check...)
		}
	}
	return dst, nil
}

func isValType(t byte) bool {
	switch t {
	case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f: // i32 i64 f32 f64 v128 funcref externref
		return true
	}
	return false
}

// skipImmediates reads the immediates of the instruction op, of the Wasm
// 2.0 instruction set, tail calls and threads (the proposals wazero
// compiles). Any other instruction is an error.
func skipImmediates(r *reader, op byte) error {
	switch {
	case op == 0x00 || op == 0x01 || op == 0x05 || op == 0x0b || op == 0x0f || op == 0x1a || op == 0x1b:
		// unreachable nop else end return drop select
	case op >= 0x02 && op <= 0x04: // block loop if
		r.leb()
	case op == 0x0c || op == 0x0d: // br br_if
		r.u32()
	case op == 0x0e: // br_table
		n := r.u32()
		if uint64(n) > uint64(len(r.b)) {
			return errors.New("br_table too long")
		}
		for range n + 1 {
			r.u32()
		}
	case op == 0x10 || op == 0x12: // call return_call
		r.u32()
	case op == 0x11 || op == 0x13: // call_indirect return_call_indirect
		r.u32()
		r.u32()
	case op == 0x1c: // select t*
		n := r.u32()
		for range n {
			if !isValType(r.byte()) {
				return errors.New("select of an unknown type")
			}
		}
	case op >= 0x20 && op <= 0x26: // local.* global.* table.get table.set
		r.u32()
	case op >= 0x28 && op <= 0x3e: // loads and stores
		memarg(r)
	case op == 0x3f || op == 0x40: // memory.size memory.grow
		r.u32()
	case op == 0x41 || op == 0x42: // i32.const i64.const
		r.leb()
	case op == 0x43: // f32.const
		r.bytes(4)
	case op == 0x44: // f64.const
		r.bytes(8)
	case op >= 0x45 && op <= 0xc4: // numeric, sign extension
	case op == 0xd0: // ref.null
		if t := r.byte(); t != 0x70 && t != 0x6f {
			return fmt.Errorf("ref.null of heap type %#x", t)
		}
	case op == 0xd1: // ref.is_null
	case op == 0xd2: // ref.func
		r.u32()
	case op == 0xfc:
		return skipFC(r)
	case op == 0xfd:
		return skipSIMD(r)
	case op == 0xfe:
		return skipAtomic(r)
	default:
		return fmt.Errorf("instruction %#x", op)
	}
	return nil
}

// memarg reads an alignment, a memory index when its bit 6 says so
// (multiple memories), and an offset.
func memarg(r *reader) {
	if r.u32()&0x40 != 0 {
		r.u32()
	}
	r.u32()
}

func skipFC(r *reader) error {
	switch sub := r.u32(); {
	case sub <= 7: // saturating truncations
	case sub == 8, sub == 10, sub == 12, sub == 14: // memory.init memory.copy table.init table.copy
		r.u32()
		r.u32()
	case sub == 9, sub == 11, sub == 13, sub >= 15 && sub <= 17: // data.drop memory.fill elem.drop table.grow/size/fill
		r.u32()
	default:
		return fmt.Errorf("instruction 0xfc %d", sub)
	}
	return nil
}

func skipSIMD(r *reader) error {
	switch sub := r.u32(); {
	case sub <= 11, sub == 92, sub == 93: // loads, store, load_zero
		memarg(r)
	case sub == 12, sub == 13: // v128.const i8x16.shuffle
		r.bytes(16)
	case sub >= 21 && sub <= 34: // extract_lane replace_lane
		r.byte()
	case sub >= 84 && sub <= 91: // load_lane store_lane
		memarg(r)
		r.byte()
	case sub <= 0x113: // the rest of SIMD and relaxed SIMD: no immediates
	default:
		return fmt.Errorf("instruction 0xfd %d", sub)
	}
	return nil
}

func skipAtomic(r *reader) error {
	switch sub := r.u32(); {
	case sub == 0x03: // atomic.fence
		r.byte()
	case sub <= 0x02, sub >= 0x10 && sub <= 0x4e:
		memarg(r)
	default:
		return fmt.Errorf("instruction 0xfe %d", sub)
	}
	return nil
}

// leb reads a signed or unsigned LEB128 of up to 10 bytes (an s33 block
// type, an s32 or s64 constant).
func (r *reader) leb() {
	for range 10 {
		if r.byte()&0x80 == 0 {
			return
		}
	}
	r.bad = true
}
