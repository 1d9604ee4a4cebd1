// Package sdk writes flowstate stream processors in Go, compiled to
// WebAssembly (GOOS=wasip1) and run by the flowstate host.
//
// A processor registers one handler in init, reads and writes named
// key-value stores and emits records to named output topics:
//
//	var seen = sdk.Store("seen") // resolved on first use, then cached
//
//	func init() { sdk.OnRecord(count) }
//
//	func count(r sdk.Record, out sdk.Out) error {
//		n, err := seen.GetInt64(r.Key) // 0 when absent
//		if err != nil {
//			return err // fails the batch; the host decides what follows
//		}
//		if err := seen.PutInt64(r.Key, n+1); err != nil {
//			return err
//		}
//		return out.Emit("counts", r.Key, sdk.Int64Bytes(n+1))
//	}
//
//	func main() {}
//
// Build it as a reactor module:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o counter.wasm .
//
// # Batches and failure
//
// The host passes records in batches (see abi/SPEC.md); the SDK calls the
// handler once per record. The first error a handler returns, or a panic,
// fails the whole batch: the SDK reports the error text to the host (the
// fail import) and the host applies none of the batch's store writes or
// emits. A recovered panic is reported like an error; the module is not
// trapped.
//
// # Ownership
//
// A Record's slices alias the batch buffer and are valid until the handler
// returns. Values returned by [KV.Get] are copies the caller may keep.
// [Iterator.Key] and [Iterator.Value] are valid until the next call of Next
// or Close. Slices passed to the SDK are read during the call only.
//
// # Errors
//
// Errors from the host wrap the abi.Err* values, so errors.Is(err,
// abi.ErrTooLarge) works; abi.Code.Retryable tells whether running the batch
// again may help.
//
// # Native tests
//
// Built for any GOOS other than wasip1, the SDK talks to an in-memory host
// instead of the flowstate imports, so processors are tested with plain go
// test; package sdktest drives it.
//
// The SDK uses no clocks, goroutines, I/O or fmt, and is not safe for
// concurrent use: a module runs one call at a time.
package sdk
