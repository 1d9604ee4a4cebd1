// Named key-value stores and iterators over them.

import * as abi from "./abi";
import { HostError, NotInt64Error, Result } from "./errors";
import { currentBatch, lenOf, ptrOf, scratchPtr, utf8 } from "./sdk";

// valBuf receives values from kv_get; it grows to the largest value read.
let valBuf = new ArrayBuffer(256);

// int64Buf holds the 8 bytes putInt64 writes.
const int64Buf = memory.data(8);

// NOT_RESOLVED marks a Store whose handle has not been asked for yet.
const NOT_RESOLVED: i32 = i32.MIN_VALUE;

// Store is a handle to one of the pipeline's key-value stores. Make one per
// store, usually in a top-level constant: new Store("counts"). Nothing is
// checked then: the name is resolved with the host on first use and the
// answer cached, and a store the pipeline does not declare makes every call
// return a HostError with code NOT_FOUND. Keys and values are bytes; keys
// sort in byte order.
export class Store {
  // h is the host's handle (>= 0), a non-retryable store_open error code
  // (< 0) that every call returns again, or NOT_RESOLVED.
  private h: i32 = NOT_RESOLVED;

  constructor(readonly name: string) {}

  // handle resolves the store with the host on first use.
  private handle(): i32 {
    if (this.h != NOT_RESOLVED) return this.h;
    const n = utf8(this.name);
    const c = abi.store_open(scratchPtr(n), n);
    if (c >= 0 || !abi.isRetryable(c)) this.h = c; // a transient host failure is not cached
    return c;
  }

  // read gets key's value into valBuf, growing it when the host says the
  // value is larger, and returns its length, or a negative code
  // (NOT_FOUND for an absent key).
  private read(h: i32, key: Uint8Array): i32 {
    while (true) {
      const cap = valBuf.byteLength;
      const c = abi.kv_get(h, ptrOf(key), lenOf(key), changetype<usize>(valBuf), cap);
      if (c <= cap) return c;
      // The value did not fit: the host returned its full length.
      valBuf = new ArrayBuffer(max(c, 2 * cap));
    }
  }

  // get returns a copy of key's value, or a null value when the key is
  // absent. A present but empty value is an empty array, not null.
  get(key: Uint8Array): Result<Uint8Array | null> {
    const h = this.handle();
    if (h < 0) return new Result<Uint8Array | null>(null, new HostError("store_open", this.name, h));
    const c = this.read(h, key);
    if (c == abi.NOT_FOUND) return new Result<Uint8Array | null>(null, null);
    if (c < 0) return new Result<Uint8Array | null>(null, new HostError("kv_get", this.name, c));
    const v = new Uint8Array(c);
    memory.copy(v.dataStart, changetype<usize>(valBuf), c);
    return new Result<Uint8Array | null>(v, null);
  }

  // put sets key to value. Reads see the write at once; it becomes durable
  // when the host commits the batch. The host answers TOO_LARGE for a key or
  // value over its limit, which fails the batch.
  put(key: Uint8Array, value: Uint8Array): Error | null {
    const h = this.handle();
    if (h < 0) return new HostError("store_open", this.name, h);
    const c = abi.kv_put(h, ptrOf(key), lenOf(key), ptrOf(value), lenOf(value));
    if (c < 0) return new HostError("kv_put", this.name, c);
    return null;
  }

  // delete removes key; deleting an absent key is not an error.
  delete(key: Uint8Array): Error | null {
    const h = this.handle();
    if (h < 0) return new HostError("store_open", this.name, h);
    const c = abi.kv_delete(h, ptrOf(key), lenOf(key));
    if (c < 0) return new HostError("kv_delete", this.name, c);
    return null;
  }

  // getInt64 returns key's value as an 8-byte big-endian int64, 0 when the
  // key is absent, and a NotInt64Error for a value of another length.
  getInt64(key: Uint8Array): Result<i64> {
    const h = this.handle();
    if (h < 0) return new Result<i64>(0, new HostError("store_open", this.name, h));
    // valBuf always holds 8 bytes, so one call tells every case apart.
    const c = abi.kv_get(h, ptrOf(key), lenOf(key), changetype<usize>(valBuf), valBuf.byteLength);
    if (c == abi.NOT_FOUND) return new Result<i64>(0, null);
    if (c < 0) return new Result<i64>(0, new HostError("kv_get", this.name, c));
    if (c != 8) return new Result<i64>(0, new NotInt64Error("sdk: kv_get " + this.name + ": "));
    return new Result<i64>(<i64>bswap<u64>(load<u64>(changetype<usize>(valBuf))), null);
  }

  // putInt64 sets key to n as 8 big-endian bytes, the encoding getInt64
  // reads (byte order matches numeric order for n >= 0).
  putInt64(key: Uint8Array, n: i64): Error | null {
    const h = this.handle();
    if (h < 0) return new HostError("store_open", this.name, h);
    store<u64>(int64Buf, bswap<u64>(<u64>n));
    const c = abi.kv_put(h, ptrOf(key), lenOf(key), int64Buf, 8);
    if (c < 0) return new HostError("kv_put", this.name, c);
    return null;
  }

  // range returns an iterator over the keys k with start <= k < end, in
  // ascending byte order. A null or empty start means from the first key, a
  // null or empty end means to the last. The bounds are read during the
  // call only. An error opening it is reported by the Iterator's err.
  //
  // An Iterator belongs to the batch that opened it: the host closes it when
  // the batch ends, and using it later gives a BAD_HANDLE error. Close it
  // when done; the host limits how many are open.
  //
  // The ABI does not say whether an open iterator sees puts and deletes
  // made after it was opened, so do not rely on either: collect what you
  // mean to change and write after close.
  range(start: Uint8Array | null, end: Uint8Array | null): Iterator {
    const it = new Iterator(this.name, currentBatch());
    const h = this.handle();
    if (h < 0) {
      it.fail(new HostError("store_open", this.name, h));
      return it;
    }
    const c = abi.kv_range(h, ptrOf(start), lenOf(start), ptrOf(end), lenOf(end));
    if (c < 0) {
      it.fail(new HostError("kv_range", this.name, c));
      return it;
    }
    it.opened(c);
    return it;
  }

  // prefix returns an iterator over the keys that begin with p; an empty p
  // is every key. See range.
  prefix(p: Uint8Array): Iterator {
    return this.range(p, prefixEnd(p));
  }
}

// prefixEnd returns the smallest key greater than every key with the prefix
// p, or null when there is none (p is empty or all 0xff).
function prefixEnd(p: Uint8Array): Uint8Array | null {
  for (let i = p.length - 1; i >= 0; i--) {
    if (p[i] != 0xff) {
      const end = p.slice(0, i + 1);
      end[i]++;
      return end;
    }
  }
  return null;
}

// ITER_BUF is the initial size of an Iterator's entry buffer.
const ITER_BUF: i32 = 4 << 10;

// MAX_ENTRY bounds the buffer an iterator grows to for one entry (see
// MAX_BATCH_BUF in sdk.ts).
const MAX_ENTRY: u32 = 1 << 29;

// freeIterBuf is the entry buffer of the last closed Iterator, handed to the
// next one.
let freeIterBuf: ArrayBuffer | null = null;

const EMPTY = new Uint8Array(0);

// Iterator walks a key range of a store; see Store.range. Use it as
//
//   const it = s.range(start, end);
//   while (it.next()) use(it.key, it.value);
//   it.close();
//   if (it.err !== null) return it.err;
//
// Entries are fetched from the host many at a time into a buffer the
// Iterator owns (reused by later iterators after close), which grows when an
// entry does not fit.
export class Iterator {
  // key and value are the current entry, views of the entry buffer: valid
  // until the next call of next or close. Both are empty before the first
  // entry and after the last.
  key: Uint8Array = EMPTY;
  value: Uint8Array = EMPTY;
  // err is the error that ended the iteration, or null at the end of the
  // range.
  err: Error | null = null;

  private h: i32 = -1;
  private open: bool = false; // the host's handle is not closed yet
  private done: bool = false;
  private buf: ArrayBuffer | null = null;
  private p: usize = 0; // the entries of buf not returned yet: [p, end)
  private end: usize = 0;

  constructor(
    private store: string,
    private seq: u32,
  ) {}

  opened(h: i32): void {
    this.h = h;
    this.open = true;
  }

  // next moves to the next entry and reports whether there is one. It
  // returns false at the end of the range, on error (see err) and after
  // close.
  next(): bool {
    this.key = EMPTY;
    this.value = EMPTY;
    if (this.done) return false;
    // An iterator opened in _initialize (batch 0) works there, as reads do.
    if (this.seq != currentBatch()) {
      this.fail(new HostError("iter_next", this.store, abi.BAD_HANDLE,
        "iterator used outside the batch it was opened in"));
      return false;
    }
    while (this.p == this.end) {
      if (!this.fetch()) return false;
    }
    const buf = changetype<ArrayBuffer>(this.buf);
    const base = changetype<usize>(buf);
    const k = this.entryBytes(buf, base);
    const v = this.entryBytes(buf, base);
    if (k === null || v === null) {
      this.fail(new Error("sdk: iter_next " + this.store + ": abi: malformed encoding"));
      return false;
    }
    this.key = k;
    this.value = v;
    return true;
  }

  private entryBytes(buf: ArrayBuffer, base: usize): Uint8Array | null {
    if (this.end - this.p < 4) return null;
    const n = load<u32>(this.p);
    if (<usize>n > this.end - this.p - 4) return null;
    const v = Uint8Array.wrap(buf, <i32>(this.p + 4 - base), <i32>n);
    this.p += 4 + n;
    return v;
  }

  // fetch refills the entries from the host. It returns false when the
  // iterator is exhausted or failed.
  private fetch(): bool {
    if (this.buf === null) {
      this.buf = freeIterBuf;
      freeIterBuf = null;
      if (this.buf === null) this.buf = new ArrayBuffer(ITER_BUF);
    }
    while (true) {
      const buf = changetype<ArrayBuffer>(this.buf);
      const cap = buf.byteLength;
      const c = abi.iter_next(this.h, changetype<usize>(buf), cap);
      if (c > 0 && c <= cap) {
        this.p = changetype<usize>(buf);
        this.end = this.p + c;
        return true;
      }
      if (c == 0) {
        this.finish();
        return false;
      }
      if (c == abi.BUFFER_TOO_SMALL) {
        // The host wrote the next entry's size; it was not consumed.
        const need = load<u32>(changetype<usize>(buf));
        if (need <= <u32>cap || need > MAX_ENTRY) {
          this.fail(new HostError("iter_next", this.store, abi.INVALID,
            "host asked for a buffer of " + need.toString() + " bytes, have " + cap.toString()));
          return false;
        }
        this.buf = new ArrayBuffer(max(<i32>need, 2 * cap));
        continue;
      }
      if (c > 0) {
        this.fail(new HostError("iter_next", this.store, abi.INVALID, "host wrote past the buffer"));
      } else {
        this.fail(new HostError("iter_next", this.store, c));
      }
      return false;
    }
  }

  // close releases the iterator; it is safe to call more than once and
  // after the iterator is exhausted.
  close(): void {
    this.key = EMPTY;
    this.value = EMPTY;
    this.finish();
  }

  fail(err: Error): void {
    this.err = err;
    this.finish();
  }

  // finish closes the host's handle (unless the host already did, at the
  // end of the batch) and gives the buffer back.
  private finish(): void {
    this.done = true;
    this.p = this.end;
    if (this.open) {
      this.open = false;
      if (this.seq == currentBatch()) abi.iter_close(this.h);
    }
    const buf = this.buf;
    if (buf !== null) {
      const free = freeIterBuf;
      if (free === null || buf.byteLength > free.byteLength) freeIterBuf = buf;
      this.buf = null;
    }
  }
}

// int64Bytes returns n as 8 big-endian bytes, the encoding getInt64 and
// putInt64 use.
export function int64Bytes(n: i64): Uint8Array {
  const b = new Uint8Array(8);
  store<u64>(b.dataStart, bswap<u64>(<u64>n));
  return b;
}

// bytesInt64 decodes 8 big-endian bytes; any other length is a
// NotInt64Error.
export function bytesInt64(b: Uint8Array): Result<i64> {
  if (b.byteLength != 8) return new Result<i64>(0, new NotInt64Error(""));
  return new Result<i64>(<i64>bswap<u64>(load<u64>(b.dataStart)), null);
}
