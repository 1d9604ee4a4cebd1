//go:build wasip1

package sdk

// The host functions of abi/SPEC.md, imported from module "flowstate". Each
// returns an i32: a length, a handle or 0 on success, a negative abi.Code on
// error. stub_abi.go has the same functions for native builds.
//
// Pointers are passed as *byte, which the compiler lowers to an i32 offset
// into linear memory; nil is offset 0, used with a length of 0 (or -1 for a
// null key or value in emit). The host reads or writes them only during the
// call and keeps none, so //go:noescape holds: a slice may even live on the
// goroutine stack, because nothing can move a stack or a heap object while
// a host function runs (the module has one thread and Go's wasm collector
// does not move objects). That keeps the user's keys and values off the
// heap on the per-record path.

// storeOpen resolves a store name to a handle; NOT_FOUND for a store the
// pipeline does not declare.
//
//go:wasmimport flowstate store_open
//go:noescape
func storeOpen(name *byte, nameLen int32) int32

// topicOpen resolves an output topic name to a handle; NOT_FOUND for a
// topic the pipeline does not declare as output.
//
//go:wasmimport flowstate topic_open
//go:noescape
func topicOpen(name *byte, nameLen int32) int32

// kvGet copies up to bufCap bytes of key's value to buf and returns the
// value's full length, or NOT_FOUND.
//
//go:wasmimport flowstate kv_get
//go:noescape
func kvGet(store int32, key *byte, keyLen int32, buf *byte, bufCap int32) int32

// kvPut sets key to val; TOO_LARGE over the host's limits.
//
//go:wasmimport flowstate kv_put
//go:noescape
func kvPut(store int32, key *byte, keyLen int32, val *byte, valLen int32) int32

// kvDelete removes key; an absent key is not an error.
//
//go:wasmimport flowstate kv_delete
//go:noescape
func kvDelete(store int32, key *byte, keyLen int32) int32

// kvRange opens an iterator over [start, end); a zero length leaves that
// side unbounded.
//
//go:wasmimport flowstate kv_range
//go:noescape
func kvRange(store int32, start *byte, startLen int32, end *byte, endLen int32) int32

// iterNext writes whole entries to buf and returns the bytes written, 0 at
// the end, or BUFFER_TOO_SMALL with the next entry's size as a
// little-endian u32 at buf.
//
//go:wasmimport flowstate iter_next
//go:noescape
func iterNext(iter int32, buf *byte, bufCap int32) int32

// iterClose invalidates an iterator handle.
//
//go:wasmimport flowstate iter_close
func iterClose(iter int32) int32

// emit queues one output record; a length of -1 is a null key or value, a
// hdrLen of 0 means no headers (otherwise the headers encoding).
//
//go:wasmimport flowstate emit
//go:noescape
func emit(topic int32, key *byte, keyLen int32, val *byte, valLen int32, hdr *byte, hdrLen int32) int32

// hostLog sends a message to the host's log; level is a slog.Level value.
//
//go:wasmimport flowstate log
//go:noescape
func hostLog(level int32, msg *byte, msgLen int32) int32

// hostFail records why the current batch fails.
//
//go:wasmimport flowstate fail
//go:noescape
func hostFail(msg *byte, msgLen int32) int32
