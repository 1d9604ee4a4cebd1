// Errors are values: SDK calls return an Error (or a Result holding one)
// instead of aborting, and a handler returns the first error it cannot
// handle, which fails the batch.

import { codeName, isRetryable } from "./abi";

// HostError is an error code a host function returned, with the import and
// the store or topic it concerned. Its message reads like the Go SDK's:
// "sdk: kv_put counts: abi: TOO_LARGE".
export class HostError extends Error {
  // op is the import, such as "kv_get".
  readonly op: string;
  // target is the store or topic name; empty when the call has none.
  readonly target: string;
  // code is the negative code from abi/SPEC.md, such as NOT_FOUND.
  readonly code: i32;

  // detail, when not empty, replaces the code's name in the message (the
  // code is still code): it says what the SDK found wrong with an answer.
  constructor(op: string, target: string, code: i32, detail: string = "") {
    super(
      "sdk: " + op + (target.length > 0 ? " " + target : "") + ": " +
      (detail.length > 0 ? detail : "abi: " + codeName(code)),
    );
    this.name = "HostError";
    this.op = op;
    this.target = target;
    this.code = code;
  }

  // retryable reports whether the failed batch may succeed when retried
  // (the host failed, rather than the guest asking for something wrong).
  retryable(): bool {
    return isRetryable(this.code);
  }
}

// NotInt64Error is returned by Store.getInt64 and bytesInt64 for a value that
// is not 8 bytes long.
export class NotInt64Error extends Error {
  constructor(where: string) {
    super(where + "sdk: value is not an 8-byte int64");
    this.name = "NotInt64Error";
  }
}

// errorCode returns the ABI code behind err (a negative number, such as
// NOT_FOUND), or 0 when err is null or did not come from a host function.
export function errorCode(err: Error | null): i32 {
  if (err instanceof HostError) return (<HostError>err).code;
  return 0;
}

// Result is a value or the error that prevented it. When err is not null,
// value is the type's zero value (null, 0) and means nothing.
export class Result<T> {
  constructor(
    public value: T,
    public err: Error | null,
  ) {}

  // ok reports whether there was no error.
  get ok(): bool {
    return this.err === null;
  }
}
