package host

import (
	"errors"
	"fmt"
	"strings"
)

// Errors of Compile, each wrapped with the module's name and the detail.
var (
	// ErrNotWasm: the bytes do not start with the Wasm magic and version 1.
	ErrNotWasm = errors.New("host: not a WebAssembly module")
	// ErrInvalidModule: wazero refused to decode, validate or compile the
	// module; its error is wrapped too.
	ErrInvalidModule = errors.New("host: invalid module")
	// ErrMissingExport: a required export (SPEC.md, Guest exports) is absent.
	ErrMissingExport = errors.New("host: missing export")
	// ErrExportSignature: a required export has another type or signature.
	ErrExportSignature = errors.New("host: export has the wrong signature")
	// ErrUnknownImport: the module imports something the host does not
	// provide (only the flowstate functions of SPEC.md and
	// wasi_snapshot_preview1 are provided, and no memory).
	ErrUnknownImport = errors.New("host: import not provided")
	// ErrImportSignature: an import the host provides is imported with
	// another signature.
	ErrImportSignature = errors.New("host: import has the wrong signature")
	// ErrABIVersion: flowstate_abi_version returned a version the host does
	// not support. It is checked at instantiation, since it needs running
	// the guest's code.
	ErrABIVersion = errors.New("host: unsupported ABI version")
	// ErrInvalidLimits is wrapped by every Limits.Validate error.
	ErrInvalidLimits = errors.New("host: invalid limits")
	// ErrInvalidConfig is wrapped by every InstanceConfig error.
	ErrInvalidConfig = errors.New("host: invalid instance config")
	// ErrClosed is returned by the methods of a closed Runtime, Module or
	// Instance.
	ErrClosed = errors.New("host: closed")
)

// Causes of a failed batch or instantiation, wrapped in a *GuestError.
var (
	// ErrTimeout: a guest call ran past Limits.CallTimeout and was stopped.
	ErrTimeout = errors.New("host: guest call timed out")
	// ErrTrap: the guest trapped (unreachable, out-of-bounds access, stack
	// overflow...); wazero's error, with the guest's stack, is wrapped too.
	ErrTrap = errors.New("host: guest trapped")
	// ErrExit: the guest called proc_exit.
	ErrExit = errors.New("host: guest exited")
	// ErrOutOfMemory: flowstate_alloc returned 0 for the batch.
	ErrOutOfMemory = errors.New("host: guest out of memory")
	// ErrOutputRefused: the host refused a write or an emit of the batch
	// (TOO_LARGE or LIMIT_EXCEEDED), so its writes or outputs would be
	// incomplete. The batch fails even if the guest then returned 0.
	ErrOutputRefused = errors.New("host: write or output refused")
	// ErrInternal: a host function failed on the host's side (a RocksDB
	// error, returned to the guest as INTERNAL), or panicked (a host bug,
	// which wazero recovers). The batch fails even if the guest then
	// returned 0; it may succeed when retried. It is never the guest's
	// fault, so an error policy must not skip a record for it.
	ErrInternal = errors.New("host: internal error in a host function")
)

// GuestError is the error of a batch, or an instantiation, that the guest
// failed. Every write and emit of a failed batch is undone.
type GuestError struct {
	// Module is the module's name, as given to Compile.
	Module string
	// Code is the non-zero value flowstate_process returned, or 0 when the
	// guest did not return (Err is set then).
	Code int32
	// Message is what the guest passed to fail during the batch, if anything.
	Message string
	// Err is why the guest did not complete: ErrTimeout, ErrTrap, ErrExit,
	// ErrOutOfMemory, ErrOutputRefused or ErrInternal, each wrapped with
	// detail. Nil when the guest returned Code.
	Err error
}

func (e *GuestError) Error() string {
	var b strings.Builder
	b.WriteString("guest ")
	b.WriteString(e.Module)
	if e.Code != 0 || e.Err == nil {
		fmt.Fprintf(&b, ": flowstate_process returned %d", e.Code)
	}
	// The message goes before Err, which may end in a multi-line stack.
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns Err.
func (e *GuestError) Unwrap() error { return e.Err }
