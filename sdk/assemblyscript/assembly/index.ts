// Package flowstate is the AssemblyScript guest SDK for flowstate: a
// processor registers one per-record handler with onRecord, reads and
// writes named stores, and emits records through the Out it is handed.
// Batches cross the ABI (abi/SPEC.md); the SDK decodes them into records.
//
// A processor's entry file imports this file and re-exports exports.ts,
// whose functions are the module's ABI exports.

export {
  ABI_VERSION,
  OK,
  NOT_FOUND,
  BAD_POINTER,
  BAD_HANDLE,
  TOO_LARGE,
  BUFFER_TOO_SMALL,
  LIMIT_EXCEEDED,
  INVALID,
  INTERNAL,
  codeName,
  isRetryable,
} from "./abi";
export { HostError, NotInt64Error, Result, errorCode } from "./errors";
export { Handler, Header, Level, Out, Record, bytes, log, onRecord, str } from "./sdk";
export { Iterator, Store, bytesInt64, int64Bytes } from "./store";
