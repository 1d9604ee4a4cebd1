package host

import (
	"fmt"
	"time"

	"github.com/flowstate/flowstate/internal/field"
)

// Default limits, used by Limits.EnsureDefaults for zero fields.
const (
	DefaultMemoryMB         = 128
	DefaultCallTimeout      = 5 * time.Second
	DefaultMaxOutputRecords = 100_000
	DefaultMaxOutputBytes   = 64 << 20
	DefaultMaxKeyBytes      = 64 << 10
	DefaultMaxValueBytes    = 1 << 20
	DefaultMaxWriteBytes    = 64 << 20
	DefaultMaxOpenIterators = 16
)

// maxMemoryMB is the largest linear memory of wasm32: 65536 pages of 64 KiB.
const maxMemoryMB = 4096

// Limits are the sandbox limits of one pipeline's module, the same for each
// of its instances. Zero fields take their defaults in EnsureDefaults. Kafka
// Streams has none of them: its processors run unsandboxed in the JVM.
type Limits struct {
	// MemoryMB caps the guest's linear memory, in MiB (16 Wasm pages each).
	// A memory.grow past it fails in the guest; a module whose declared
	// minimum is above it is refused by Compile. Default 128, at most 4096.
	MemoryMB int `koanf:"memory_mb"`
	// CallTimeout bounds the wall time of one guest call: a batch's
	// flowstate_alloc and flowstate_process together, or _initialize and
	// flowstate_abi_version at instantiation. A guest over it is stopped and
	// its batch fails with ErrTimeout. Default 5s.
	CallTimeout time.Duration `koanf:"call_timeout"`
	// MaxOutputRecords caps the records one batch may emit. Default 100000.
	MaxOutputRecords int `koanf:"max_output_records"`
	// MaxOutputBytes caps the key, value and header bytes one batch may
	// emit. Default 64 MiB.
	MaxOutputBytes int `koanf:"max_output_bytes"`
	// MaxKeyBytes caps the key of a store write or an emitted record.
	// Default 64 KiB.
	MaxKeyBytes int `koanf:"max_key_bytes"`
	// MaxValueBytes caps the value of a store write, and the value and
	// headers together of an emitted record. Default 1 MiB; the engine
	// lowers the default to what the topics it writes accept
	// (max.message.bytes, less the key and the record's framing), and
	// refuses to start when a value set here does not fit them.
	MaxValueBytes int `koanf:"max_value_bytes"`
	// MaxWriteBytes caps the key and value bytes of the store writes
	// (kv_put, kv_delete) one batch may buffer. Default 64 MiB.
	MaxWriteBytes int `koanf:"max_write_bytes"`
	// MaxOpenIterators caps the iterators a guest holds open at once.
	// Default 16.
	MaxOpenIterators int `koanf:"max_open_iterators"`
}

// EnsureDefaults sets zero fields to their defaults.
func (l *Limits) EnsureDefaults() {
	if l.MemoryMB == 0 {
		l.MemoryMB = DefaultMemoryMB
	}
	if l.CallTimeout == 0 {
		l.CallTimeout = DefaultCallTimeout
	}
	if l.MaxOutputRecords == 0 {
		l.MaxOutputRecords = DefaultMaxOutputRecords
	}
	if l.MaxOutputBytes == 0 {
		l.MaxOutputBytes = DefaultMaxOutputBytes
	}
	if l.MaxKeyBytes == 0 {
		l.MaxKeyBytes = DefaultMaxKeyBytes
	}
	if l.MaxValueBytes == 0 {
		l.MaxValueBytes = DefaultMaxValueBytes
	}
	if l.MaxOpenIterators == 0 {
		l.MaxOpenIterators = DefaultMaxOpenIterators
	}
	if l.MaxWriteBytes == 0 {
		l.MaxWriteBytes = DefaultMaxWriteBytes
	}
}

// Validate reports every field that is out of range, one *field.Error per
// field keyed by its config key (memory_mb), each wrapping
// ErrInvalidLimits. Call it after EnsureDefaults: a zero field is invalid.
func (l Limits) Validate() error {
	var errs field.List
	bad := func(key, format string, args ...any) {
		errs = append(errs, &field.Error{Key: key, Msg: fmt.Sprintf(format, args...), Err: ErrInvalidLimits})
	}
	if l.MemoryMB < 1 || l.MemoryMB > maxMemoryMB {
		bad("memory_mb", "%d is not in [1, %d]", l.MemoryMB, maxMemoryMB)
	}
	if l.CallTimeout <= 0 {
		bad("call_timeout", "%s is not positive", l.CallTimeout)
	}
	positive := []struct {
		key string
		v   int
	}{
		{"max_output_records", l.MaxOutputRecords},
		{"max_output_bytes", l.MaxOutputBytes},
		{"max_key_bytes", l.MaxKeyBytes},
		{"max_value_bytes", l.MaxValueBytes},
		{"max_open_iterators", l.MaxOpenIterators},
		{"max_write_bytes", l.MaxWriteBytes},
	}
	for _, f := range positive {
		if f.v <= 0 {
			bad(f.key, "%d is not positive", f.v)
		}
	}
	return errs.Err()
}

// memoryPages returns MemoryMB in Wasm pages of 64 KiB.
func (l Limits) memoryPages() uint32 { return uint32(l.MemoryMB) * 16 }
