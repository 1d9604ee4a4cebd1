package conformance

import (
	"context"
	"fmt"
	"time"

	"github.com/flowstate/flowstate/abi"
)

// Host is a host implementation under test. It is the one interface of
// this package another host implements (with a small adapter) to run the
// suites: load a module for one task with its stores and output topics,
// run batches, read the stores back.
type Host interface {
	// Load checks and compiles wasm, creates the stores of setup with its
	// seed entries, and instantiates the module (running _initialize). A
	// module the host refuses, or whose instantiation the guest fails, is
	// a *Failure; any other error is the host's own.
	Load(ctx context.Context, wasm []byte, setup Setup) (Instance, error)
}

// Instance is one loaded module and its stores. It is used from one
// goroutine.
type Instance interface {
	// Process runs one batch, as SPEC.md describes. A batch the guest
	// fails is a *Failure, and none of its writes or outputs may be
	// applied.
	Process(ctx context.Context, recs []abi.Record) ([]Output, error)
	// Entries returns the contents of a store, in ascending key order, as
	// of the last successful batch.
	Entries(ctx context.Context, store string) ([]Entry, error)
	// Close releases the instance and its stores.
	Close(ctx context.Context) error
}

// LogReader is implemented by an Instance that can show what the guest
// logged; the suites then check log calls too.
type LogReader interface {
	// Logs returns the messages of the guest's log calls so far, in order.
	Logs() []Log
}

// Log is one log call of a guest.
type Log struct {
	Level   int32 // abi.LevelDebug ... abi.LevelError
	Message string
}

// Setup is what a module is loaded with.
type Setup struct {
	// Name is the module's name. Every load failure must mention it.
	Name string
	// Stores are the stores store_open resolves, Topics the output topics
	// topic_open resolves.
	Stores []string
	Topics []string
	// Seed is written to the stores before the module is instantiated.
	Seed []Entry
	// Limits are the sandbox limits; zero fields take the host's defaults.
	Limits Limits
}

// Limits are the sandbox limits of SPEC.md's Sandbox section.
type Limits struct {
	MemoryMB         int
	CallTimeout      time.Duration
	MaxOutputRecords int
	MaxOutputBytes   int
	MaxKeyBytes      int
	MaxValueBytes    int
	MaxOpenIterators int
}

// Entry is one key of a store.
type Entry struct {
	Store      string // empty in the result of Entries
	Key, Value []byte
}

// Output is one record a batch emitted. A nil Key or Value is null.
type Output struct {
	Topic   string
	Key     []byte
	Value   []byte
	Headers []abi.Header
}

// Kind says why a host refused a module or a batch failed, in the terms of
// SPEC.md.
type Kind string

// Kinds of a refused module, from Host.Load.
const (
	NotWasm         Kind = "not_wasm"         // not a Wasm binary
	InvalidModule   Kind = "invalid_module"   // fails to decode, validate or compile; or over a limit (memory, tables)
	MissingExport   Kind = "missing_export"   // a required export is absent
	ExportSignature Kind = "export_signature" // a required export has the wrong type
	UnknownImport   Kind = "unknown_import"   // an import the host does not provide
	ImportSignature Kind = "import_signature" // a provided import with the wrong type
	ABIVersion      Kind = "abi_version"      // flowstate_abi_version returned an unsupported version
)

// Kinds of a failed batch, from Instance.Process, or of a failed
// instantiation (_initialize), from Host.Load.
const (
	GuestFailed   Kind = "guest_failed"   // flowstate_process returned non-zero
	Trap          Kind = "trap"           // the guest trapped
	Timeout       Kind = "timeout"        // a call ran past call_timeout
	Exit          Kind = "exit"           // the guest called proc_exit
	OutOfMemory   Kind = "out_of_memory"  // flowstate_alloc could not hold the batch
	OutputRefused Kind = "output_refused" // a write or emit was refused (TOO_LARGE, LIMIT_EXCEEDED)
	Internal      Kind = "internal"       // the host failed
)

// Failure is a module the host refused or a batch the guest failed.
type Failure struct {
	Kind Kind
	// Code is what flowstate_process returned, for GuestFailed.
	Code int32
	// Message is what the guest passed to fail during the batch, if
	// anything.
	Message string
	// Detail is the host's full error text.
	Detail string
}

func (f *Failure) Error() string {
	s := string(f.Kind)
	if f.Kind == GuestFailed {
		s += fmt.Sprintf(" (code %d)", f.Code)
	}
	if f.Message != "" {
		s += ": " + f.Message
	}
	if f.Detail != "" {
		s += ": " + f.Detail
	}
	return s
}
