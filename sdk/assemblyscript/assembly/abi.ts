// The host functions of abi/SPEC.md, imported from module "flowstate", and
// the ABI's error codes. Each import returns an i32: a length, a handle or 0
// on success, a negative code on error.
//
// Pointers are usize (an i32 offset into linear memory). The host reads or
// writes them only during the call and keeps none, and nothing in the guest
// runs while a host function does, so a pointer to any live object is good
// for the call: AssemblyScript's collector neither moves objects nor runs
// except when the guest allocates. An empty key or value is passed as (0, 0)
// rather than as a pointer that may lie just past an allocation's end.

// The ABI version this SDK implements (flowstate_abi_version).
export const ABI_VERSION: i32 = 1;

// The error codes of abi/SPEC.md. They keep their numbers in every ABI
// version.
export const OK: i32 = 0;
export const NOT_FOUND: i32 = -1;
export const BAD_POINTER: i32 = -2;
export const BAD_HANDLE: i32 = -3;
export const TOO_LARGE: i32 = -4;
export const BUFFER_TOO_SMALL: i32 = -5;
export const LIMIT_EXCEEDED: i32 = -6;
export const INVALID: i32 = -7;
export const INTERNAL: i32 = -8;

// NULL_LEN is the length that marks a null key or value: in emit's
// arguments, and in the batch encoding (as u32 0xFFFFFFFF).
export const NULL_LEN: i32 = -1;

// codeName returns a code's name from abi/SPEC.md, such as "NOT_FOUND", or
// "CODE(n)" for a code this SDK does not know (as the Go abi package does).
export function codeName(code: i32): string {
  switch (code) {
    case OK: return "OK";
    case NOT_FOUND: return "NOT_FOUND";
    case BAD_POINTER: return "BAD_POINTER";
    case BAD_HANDLE: return "BAD_HANDLE";
    case TOO_LARGE: return "TOO_LARGE";
    case BUFFER_TOO_SMALL: return "BUFFER_TOO_SMALL";
    case LIMIT_EXCEEDED: return "LIMIT_EXCEEDED";
    case INVALID: return "INVALID";
    case INTERNAL: return "INTERNAL";
  }
  return "CODE(" + code.toString() + ")";
}

// isRetryable reports whether a batch that failed with code may succeed when
// run again unchanged: only INTERNAL (a host failure) is.
export function isRetryable(code: i32): bool {
  return code == INTERNAL;
}

// store_open resolves a store name to a handle; NOT_FOUND for a store the
// pipeline does not declare.
// @ts-ignore: decorator
@external("flowstate", "store_open")
export declare function store_open(name: usize, nameLen: i32): i32;

// topic_open resolves an output topic name to a handle; NOT_FOUND for a
// topic the pipeline does not declare as output.
// @ts-ignore: decorator
@external("flowstate", "topic_open")
export declare function topic_open(name: usize, nameLen: i32): i32;

// kv_get copies up to bufCap bytes of key's value to buf and returns the
// value's full length, or NOT_FOUND.
// @ts-ignore: decorator
@external("flowstate", "kv_get")
export declare function kv_get(store: i32, key: usize, keyLen: i32, buf: usize, bufCap: i32): i32;

// kv_put sets key to val; TOO_LARGE over the host's limits.
// @ts-ignore: decorator
@external("flowstate", "kv_put")
export declare function kv_put(store: i32, key: usize, keyLen: i32, val: usize, valLen: i32): i32;

// kv_delete removes key; an absent key is not an error.
// @ts-ignore: decorator
@external("flowstate", "kv_delete")
export declare function kv_delete(store: i32, key: usize, keyLen: i32): i32;

// kv_range opens an iterator over [start, end); a zero length leaves that
// side unbounded.
// @ts-ignore: decorator
@external("flowstate", "kv_range")
export declare function kv_range(store: i32, start: usize, startLen: i32, end: usize, endLen: i32): i32;

// iter_next writes whole entries to buf and returns the bytes written, 0 at
// the end, or BUFFER_TOO_SMALL with the next entry's size as a
// little-endian u32 at buf.
// @ts-ignore: decorator
@external("flowstate", "iter_next")
export declare function iter_next(iter: i32, buf: usize, bufCap: i32): i32;

// iter_close invalidates an iterator handle.
// @ts-ignore: decorator
@external("flowstate", "iter_close")
export declare function iter_close(iter: i32): i32;

// emit queues one output record; a length of -1 is a null key or value, a
// hdrLen of 0 means no headers (otherwise the headers encoding).
// @ts-ignore: decorator
@external("flowstate", "emit")
export declare function emit(topic: i32, key: usize, keyLen: i32, val: usize, valLen: i32, hdr: usize, hdrLen: i32): i32;

// log sends a message to the host's log; level is a Go slog.Level value.
// @ts-ignore: decorator
@external("flowstate", "log")
export declare function log(level: i32, msg: usize, msgLen: i32): i32;

// fail records why the current batch fails.
// @ts-ignore: decorator
@external("flowstate", "fail")
export declare function fail(msg: usize, msgLen: i32): i32;
