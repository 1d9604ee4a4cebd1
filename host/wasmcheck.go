package host

import (
	"errors"
	"fmt"

	"github.com/flowstate/flowstate/abi"
)

// maxTableElements caps the elements of all of a module's tables together.
// A table element costs the host 8 bytes outside the guest's linear memory,
// so without a cap a guest could take gigabytes past Limits.MemoryMB with
// table.grow, or with a large declared minimum. 1<<20 elements is 8 MiB; a
// Go guest's one table has about 6,000.
const maxTableElements = 1 << 20

// errUnparsed is returned by prepareModule for bytes it cannot walk.
var errUnparsed = errors.New("cannot read the module's sections")

// Wasm section ids and import kinds this file reads.
const (
	sectionImport = 2
	sectionTable  = 4

	importFunc   = 0
	importTable  = 1
	importMemory = 2
	importGlobal = 3
	importTag    = 4

	refFunc   = 0x70
	refExtern = 0x6f
)

// prepareModule checks what wazero's CompiledModule does not show, imports
// of tables, globals and tags (the host provides none), and the size of
// tables, and returns wasm with every table given a maximum, so that
// table.grow past maxTableElements in all fails in the guest (it returns -1)
// instead of allocating on the host. Everything else is copied unchanged.
//
// problems are the module's faults, each wrapping ErrUnknownImport or
// ErrInvalidModule. err wraps errUnparsed when the bytes are not a module
// this walk understands; wazero is then asked to explain.
func prepareModule(wasm []byte) (out []byte, problems []error, err error) {
	if len(wasm) < len(wasmHeader) {
		return nil, nil, fmt.Errorf("%w: %d bytes", errUnparsed, len(wasm))
	}
	out = make([]byte, 0, len(wasm)+16)
	out = append(out, wasm[:len(wasmHeader)]...)
	r := reader{b: wasm[len(wasmHeader):]}
	for len(r.b) > 0 {
		start := len(wasm) - len(r.b)
		id := r.byte()
		size := r.u32()
		body := r.bytes(size)
		if r.bad {
			return nil, nil, fmt.Errorf("%w: section at byte %d runs past the end", errUnparsed, start)
		}
		switch id {
		case sectionImport:
			p, err := importProblems(body)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: import section: %w", errUnparsed, err)
			}
			problems = append(problems, p...)
		case sectionTable:
			t, p, err := capTables(body)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: table section: %w", errUnparsed, err)
			}
			problems = append(problems, p...)
			if p == nil {
				out = append(out, id)
				out = appendU32(out, uint32(len(t)))
				out = append(out, t...)
				continue
			}
		}
		out = append(out, wasm[start:len(wasm)-len(r.b)]...)
	}
	return out, problems, nil
}

// importProblems reports the imports that are not functions or memories
// (those are checked against what the host provides by wruntime.check).
func importProblems(body []byte) ([]error, error) {
	var problems []error
	r := reader{b: body}
	n := r.u32()
	for range n {
		mod := r.name()
		name := r.name()
		kind := r.byte()
		what := ""
		switch kind {
		case importFunc:
			r.u32()
		case importTable:
			r.byte()
			r.limits()
			what = "table"
		case importMemory:
			r.limits()
		case importGlobal:
			r.byte() // the value type; a typed reference would be longer and fails below
			r.byte()
			what = "global"
		case importTag:
			r.byte()
			r.u32()
			what = "tag"
		default:
			return nil, fmt.Errorf("import %s.%s of unknown kind %#x", mod, name, kind)
		}
		if r.bad {
			return nil, errors.New("truncated")
		}
		if what != "" {
			problems = append(problems, fmt.Errorf("%w: %s %s.%s (the host provides functions only: the %s functions of the ABI and wasi_snapshot_preview1)",
				ErrUnknownImport, what, mod, name, abi.ImportModule))
		}
	}
	if r.bad || len(r.b) != 0 {
		return nil, errors.New("truncated or trailing bytes")
	}
	return problems, nil
}

// capTables returns the table section body with a maximum on every table:
// the room left under maxTableElements once every table has its minimum is
// shared equally, and a declared maximum below that share is kept. A module
// whose minimums add up to more than maxTableElements is a problem, and so
// is a table encoding this function does not know (a table with an
// initializer expression, or 64-bit limits).
func capTables(body []byte) ([]byte, []error, error) {
	type table struct {
		ref      byte
		min, max uint32
		hasMax   bool
	}
	r := reader{b: body}
	n := r.u32()
	if r.bad || uint64(n) > uint64(len(r.b)) {
		return nil, nil, errors.New("bad table count")
	}
	tables := make([]table, 0, n)
	var total uint64
	for k := range n {
		var t table
		t.ref = r.byte()
		if t.ref != refFunc && t.ref != refExtern {
			if r.bad {
				break
			}
			return nil, []error{fmt.Errorf("%w: table %d has an encoding the host does not accept (type byte %#x; only funcref and externref tables without initializer)",
				ErrInvalidModule, k, t.ref)}, nil
		}
		flags := r.byte()
		switch flags {
		case 0:
			t.min = r.u32()
		case 1:
			t.min, t.max, t.hasMax = r.u32(), r.u32(), true
		default:
			if r.bad {
				break
			}
			return nil, []error{fmt.Errorf("%w: table %d has limits flags %#x; the host accepts 32-bit, unshared table limits", ErrInvalidModule, k, flags)}, nil
		}
		total += uint64(t.min)
		tables = append(tables, t)
	}
	if r.bad || len(r.b) != 0 {
		return nil, nil, errors.New("truncated or trailing bytes")
	}
	if total > maxTableElements {
		return nil, []error{fmt.Errorf("%w: the tables' minimum sizes add up to %d elements, over the host's limit of %d (each costs host memory outside memory_mb)",
			ErrInvalidModule, total, maxTableElements)}, nil
	}
	var share uint32
	if n > 0 {
		share = uint32((maxTableElements - total) / uint64(n))
	}
	out := appendU32(make([]byte, 0, len(body)+4*int(n)), n)
	for _, t := range tables {
		max := t.min + share
		if t.hasMax && t.max < max {
			max = t.max
		}
		out = append(out, t.ref, 1)
		out = appendU32(out, t.min)
		out = appendU32(out, max)
	}
	return out, nil, nil
}

// reader reads the Wasm binary encoding; after the first short or
// malformed read every read returns zero values and bad is set.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) byte() byte {
	if r.bad || len(r.b) == 0 {
		r.bad = true
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// u32 reads an unsigned LEB128 of at most 5 bytes that fits 32 bits.
func (r *reader) u32() uint32 {
	var v uint64
	for shift := 0; shift < 35; shift += 7 {
		c := r.byte()
		if r.bad {
			return 0
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			if v > 0xffffffff {
				r.bad = true
				return 0
			}
			return uint32(v)
		}
	}
	r.bad = true
	return 0
}

func (r *reader) bytes(n uint32) []byte {
	if r.bad || uint64(n) > uint64(len(r.b)) {
		r.bad = true
		return nil
	}
	b := r.b[:n]
	r.b = r.b[n:]
	return b
}

func (r *reader) name() string { return string(r.bytes(r.u32())) }

// limits reads memory or table limits: a flags byte, a minimum and, when
// bit 0 is set, a maximum. 64-bit limits (bit 2) are u64 LEB128s, read here
// as up to 10 bytes each.
func (r *reader) limits() {
	flags := r.byte()
	n := 1 + int(flags&1)
	for range n {
		if flags&4 != 0 {
			r.u64()
		} else {
			r.u32()
		}
	}
}

func (r *reader) u64() {
	for range 10 {
		if r.byte()&0x80 == 0 {
			return
		}
	}
	r.bad = true
}

func appendU32(dst []byte, v uint32) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}
