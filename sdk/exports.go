//go:build wasip1

package sdk

import (
	"unsafe"

	"github.com/flowstate/flowstate/abi"
)

// The guest exports of abi/SPEC.md. Go's wasmexport allows int32 parameters
// and results here; the host reads pointers and sizes as unsigned.

//go:wasmexport flowstate_abi_version
func exportABIVersion() int32 { return abi.Version }

// exportAlloc returns the address of the batch buffer, grown to size
// bytes. The buffer is a package variable, so it stays put and alive until
// the next call. 0 means the size cannot be allocated; when memory runs out
// the Go runtime aborts instead, which traps and fails the batch.
//
//go:wasmexport flowstate_alloc
func exportAlloc(size int32) int32 {
	b := allocBatch(uint32(size))
	if b == nil {
		return 0
	}
	return int32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}

// exportProcess processes the batch at [ptr, ptr+n). The batch must lie in
// the buffer exportAlloc returned: the SDK slices that buffer rather than
// turning an integer from the host into a pointer.
//
//go:wasmexport flowstate_process
func exportProcess(ptr, n int32) int32 {
	base := uint32(uintptr(unsafe.Pointer(unsafe.SliceData(batchBuf))))
	return processAt(uint32(ptr)-base, uint32(n)) // a ptr below base wraps and is refused
}
