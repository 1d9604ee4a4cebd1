// The per-record surface of the SDK: registration, the record type, emitting
// and logging, and the batch loop behind them. Batches cross the ABI; the
// SDK decodes them here and calls the handler once per record.

import * as abi from "./abi";
import { HostError } from "./errors";

// Header is a record header. Its key is bytes (the ABI allows any bytes); a
// null value is a null header value, distinct from an empty one.
export class Header {
  constructor(
    public key: Uint8Array,
    public value: Uint8Array | null,
  ) {}

  // of makes a header from strings, UTF-8 encoded.
  static of(key: string, value: string | null): Header {
    return new Header(bytes(key), value === null ? null : bytes(value));
  }
}

// Record is one input record. key and value are null for a null key or
// value (a null value is a tombstone) and empty, not null, for an empty
// one; topic is the input topic's name and timestamp the Kafka timestamp
// in milliseconds since the Unix epoch.
//
// The SDK decodes every record of a batch into the same Record, and key,
// value and the headers' bytes are views of the batch buffer the host
// writes the next batch into: all of it is valid until the handler
// returns, so copy (Uint8Array.slice) what you keep.
export class Record {
  topic: string = "";
  partition: i32 = 0;
  offset: i64 = 0;
  timestamp: i64 = 0;
  key: Uint8Array | null = null;
  value: Uint8Array | null = null;
  headers: Header[] = [];
}

// Handler processes one record. Returning an Error fails the batch: none of
// its writes or emits are applied, and the host decides what follows
// (retry, skip, stop).
export type Handler = (r: Record, out: Out) => Error | null;

// Level is a log level, with the values of Go's slog.Level that the log
// import takes.
export enum Level {
  Debug = -4,
  Info = 0,
  Warn = 4,
  Error = 8,
}

// handler is the function given to onRecord; registrations counts the
// calls, so that a second registration fails every batch instead of
// silently replacing the first.
let handler: Handler = noHandler;
let registrations: i32 = 0;

function noHandler(r: Record, out: Out): Error | null {
  return null;
}

// onRecord registers fn as the processor's handler. Call it once, at the
// top level of the processor's module: top-level code runs in
// _initialize, which the host calls before the first batch. fn is called
// once per input record, in offset order; the first error it returns (or
// an abort) fails the batch.
//
// Calling onRecord more than once does not abort: every batch then fails
// with a message saying so.
export function onRecord(fn: Handler): void {
  handler = fn;
  registrations++;
}

// batchSeq numbers flowstate_process calls, so that an Out or an Iterator
// kept past its batch is detected instead of reaching a handle the host has
// closed or given to someone else. 0 is never a batch.
let batchSeq: u32 = 0;
let inBatch = false;

// currentBatch returns the number of the batch being processed, or 0
// outside flowstate_process.
export function currentBatch(): u32 {
  return inBatch ? batchSeq : 0;
}

// Out emits records to the pipeline's output topics. The Out passed to a
// handler is valid during that batch's handler calls only.
export class Out {
  constructor(private seq: u32) {}

  // emit queues one output record to topic. A null key or value is sent as
  // null (a null value is a tombstone), an empty one as empty; headers may
  // be null or empty for none. Everything is read during the call only.
  //
  // The topic must be one the pipeline declares as output; its handle is
  // resolved on first use and cached. The error is a HostError with code
  // NOT_FOUND for an undeclared topic, LIMIT_EXCEEDED when the batch's
  // output is over the host's limit and TOO_LARGE for an oversized record
  // (the last two fail the batch whatever the handler returns).
  emit(
    topic: string,
    key: Uint8Array | null,
    value: Uint8Array | null,
    headers: Header[] | null = null,
  ): Error | null {
    if (this.seq == 0 || this.seq != batchSeq || !inBatch) {
      return new Error("sdk: Out used outside the batch it was passed to");
    }
    const t = topicHandle(topic);
    if (t < 0) return new HostError("topic_open", topic, t);
    let hp: usize = 0;
    let hl: i32 = 0;
    if (headers !== null && headers.length > 0) {
      hl = encodeHeaders(headers);
      hp = changetype<usize>(hdrBuf);
    }
    const c = abi.emit(t, ptrOf(key), nullableLen(key), ptrOf(value), nullableLen(value), hp, hl);
    if (c < 0) return new HostError("emit", topic, c);
    return null;
  }
}

// hdrBuf holds the headers encoding of the last emit with headers; it grows
// to the largest.
let hdrBuf = new ArrayBuffer(256);

// encodeHeaders writes the headers encoding of hs to hdrBuf and returns its
// length.
function encodeHeaders(hs: Header[]): i32 {
  let n: i32 = 4;
  for (let i = 0; i < hs.length; i++) {
    const h = unchecked(hs[i]);
    const v = h.value;
    n += 8 + h.key.byteLength + (v === null ? 0 : v.byteLength);
  }
  if (n > hdrBuf.byteLength) hdrBuf = new ArrayBuffer(max(n, 2 * hdrBuf.byteLength));
  let p = changetype<usize>(hdrBuf);
  store<u32>(p, hs.length);
  p += 4;
  for (let i = 0; i < hs.length; i++) {
    const h = unchecked(hs[i]);
    p = putBytes(p, h.key);
    const v = h.value;
    if (v === null) {
      store<u32>(p, <u32>abi.NULL_LEN);
      p += 4;
    } else {
      p = putBytes(p, v);
    }
  }
  return n;
}

function putBytes(p: usize, b: Uint8Array): usize {
  store<u32>(p, b.byteLength);
  memory.copy(p + 4, b.dataStart, b.byteLength);
  return p + 4 + b.byteLength;
}

// topics caches topic_open's answers by name: a handle (>= 0), or a
// non-retryable error code (< 0), which every later emit returns again.
const topics = new Map<string, i32>();
let lastTopic: string = "";
let lastTopicHandle: i32 = -1;

function topicHandle(name: string): i32 {
  // Most processors emit to one or two topics: a string that is the same
  // object as the last one compares without hashing.
  if (name == lastTopic && lastTopicHandle != -1) return lastTopicHandle;
  let h: i32;
  if (topics.has(name)) {
    h = topics.get(name);
  } else {
    const n = utf8(name);
    h = abi.topic_open(scratchPtr(n), n);
    if (h < 0 && abi.isRetryable(h)) return h; // a transient host failure is not cached
    topics.set(name, h);
  }
  lastTopic = name;
  lastTopicHandle = h;
  return h;
}

// log sends msg to the host's log at level. The host may drop or truncate
// messages; nothing is returned. It does not fail the batch: return an
// error from the handler for that.
export function log(level: Level, msg: string): void {
  const n = utf8(msg);
  abi.log(<i32>level, scratchPtr(n), n);
}

// scratch receives the UTF-8 encoding of names and messages passed to the
// host; it grows to the longest.
let scratch = new ArrayBuffer(256);

// utf8 encodes s into scratch and returns the byte length. The encoding is
// valid until the next call.
export function utf8(s: string): i32 {
  const n = String.UTF8.byteLength(s);
  if (n > scratch.byteLength) scratch = new ArrayBuffer(max(n, 2 * scratch.byteLength));
  String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, changetype<usize>(scratch));
  return n;
}

// scratchPtr is the address to pass the host for n bytes of scratch: 0 when
// n is 0 (see abi.ts).
export function scratchPtr(n: i32): usize {
  return n == 0 ? 0 : changetype<usize>(scratch);
}

// failBatch reports msg to the host and returns the status that fails a
// batch.
function failBatch(msg: string): i32 {
  const n = utf8(msg);
  abi.fail(scratchPtr(n), n);
  return 1;
}

// bytes returns s encoded as UTF-8.
export function bytes(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s));
}

// str decodes UTF-8 bytes to a string; invalid sequences become U+FFFD.
// A null b is the empty string.
export function str(b: Uint8Array | null): string {
  if (b === null) return "";
  return String.UTF8.decodeUnsafe(b.dataStart, b.byteLength);
}

// ptrOf returns the address of b's first byte, or 0 for a null or empty b
// (see abi.ts).
export function ptrOf(b: Uint8Array | null): usize {
  if (b === null || b.byteLength == 0) return 0;
  return b.dataStart;
}

// lenOf is b's length, 0 for null.
export function lenOf(b: Uint8Array | null): i32 {
  return b === null ? 0 : b.byteLength;
}

// nullableLen is b's length, or NULL_LEN for a null b.
function nullableLen(b: Uint8Array | null): i32 {
  return b === null ? abi.NULL_LEN : b.byteLength;
}

// The batch buffer flowstate_alloc hands out; the host writes each batch
// into it. It is only replaced by a larger one, and the global keeps it
// alive (and, since the collector does not move objects, in place) until
// then.
let batchBuf: ArrayBuffer | null = null;

// MIN_BATCH_BUF is the smallest batch buffer, allocated on the first
// flowstate_alloc call.
const MIN_BATCH_BUF: u32 = 64 << 10;

// MAX_BATCH_BUF bounds a batch buffer below the largest block
// AssemblyScript's allocator can hand out (2^30 less its header), so that a
// huge size gets flowstate_alloc's 0 instead of an abort.
const MAX_BATCH_BUF: u32 = 1 << 29;

// allocBatch is flowstate_alloc: the address of the batch buffer, grown to
// at least size bytes, or 0 for a size that cannot be a batch. When memory
// runs out the allocator aborts instead, which traps and fails the batch.
export function allocBatch(size: u32): usize {
  if (size > MAX_BATCH_BUF) return 0;
  const cur = batchBuf;
  if (cur === null || size > <u32>cur.byteLength) {
    const old: u32 = cur === null ? 0 : <u32>cur.byteLength;
    const n = min(max(max(size, MIN_BATCH_BUF), old + old / 2), MAX_BATCH_BUF);
    batchBuf = null; // lets a collection during the allocation reclaim the old buffer
    batchBuf = new ArrayBuffer(<i32>n);
  }
  return changetype<usize>(batchBuf);
}

// processAt is flowstate_process: it processes the n bytes at p, which must
// lie in the buffer allocBatch returned (the SDK decodes only memory it
// owns, whatever integer the host passes).
export function processAt(p: usize, n: u32): i32 {
  const buf = batchBuf;
  if (buf === null) return failBatch("sdk: flowstate_process called before flowstate_alloc");
  const off = <u32>(p - changetype<usize>(buf)); // a p below the buffer wraps and is refused
  if (<u64>off + <u64>n > <u64>buf.byteLength) {
    return failBatch("sdk: batch lies outside the buffer flowstate_alloc returned");
  }
  batchSeq++;
  if (batchSeq == 0) batchSeq = 1;
  inBatch = true;
  const status = processBatch(buf, off, n);
  inBatch = false;
  return status;
}

// rec is decoded into for every record, so that its headers array is
// reused across records and batches.
const rec = new Record();

const MALFORMED = "sdk: decode batch: abi: malformed encoding";

function processBatch(buf: ArrayBuffer, off: u32, n: u32): i32 {
  if (registrations == 0) {
    return failBatch("sdk: no handler: call onRecord at the top level of the processor");
  }
  if (registrations > 1) {
    return failBatch("sdk: onRecord was called " + registrations.toString() + " times; call it once");
  }
  const d = new Decoder(buf, off, n);
  const count = d.u32();
  if (d.bad) return failBatch(MALFORMED);
  const out = new Out(batchSeq);
  const fn = handler;
  for (let i: u32 = 0; i < count; i++) {
    if (!d.record(rec)) return failBatch(MALFORMED);
    setCurrent(rec);
    const err = fn(rec, out);
    setCurrent(null);
    if (err !== null) return failBatch(where(rec) + err.message);
  }
  if (d.p != d.end) return failBatch(MALFORMED); // bytes after the last record
  return 0;
}

// where names a record for a failure message: "topic/partition@offset: ".
function where(r: Record): string {
  return r.topic + "/" + r.partition.toString() + "@" + r.offset.toString() + ": ";
}

// Decoder reads the batch encoding of abi/SPEC.md from [p, end) of buf; after
// the first short read bad is set and every read returns zero values.
class Decoder {
  p: usize;
  end: usize;
  bad: bool = false;

  constructor(
    private buf: ArrayBuffer,
    off: u32,
    n: u32,
  ) {
    this.p = changetype<usize>(buf) + off;
    this.end = this.p + n;
  }

  u32(): u32 {
    if (this.bad || this.end - this.p < 4) {
      this.bad = true;
      return 0;
    }
    const v = load<u32>(this.p);
    this.p += 4;
    return v;
  }

  u64(): u64 {
    if (this.bad || this.end - this.p < 8) {
      this.bad = true;
      return 0;
    }
    const v = load<u64>(this.p);
    this.p += 8;
    return v;
  }

  // bytes returns a view of the next length-prefixed bytes; with nullable,
  // a length of 0xFFFFFFFF is null.
  bytes(nullable: bool): Uint8Array | null {
    const n = this.u32();
    if (this.bad) return null;
    if (nullable && n == <u32>abi.NULL_LEN) return null;
    if (<usize>n > this.end - this.p) {
      this.bad = true;
      return null;
    }
    const v = Uint8Array.wrap(this.buf, <i32>(this.p - changetype<usize>(this.buf)), <i32>n);
    this.p += n;
    return v;
  }

  // record decodes one record into r and reports whether it was whole.
  record(r: Record): bool {
    // The topic: the same name as the last record's in nearly every batch,
    // so compared in place and decoded only when it changes.
    const tn = this.u32();
    if (this.bad || <usize>tn > this.end - this.p) return false;
    r.topic = topicName(this.p, tn);
    this.p += tn;
    r.partition = <i32>this.u32();
    r.offset = <i64>this.u64();
    r.timestamp = <i64>this.u64();
    r.key = this.bytes(true);
    r.value = this.bytes(true);
    const hn = this.u32();
    // Each header takes at least 8 bytes: a count past that is malformed,
    // and checking first keeps a bad count from growing the array.
    if (this.bad || <u64>hn * 8 > <u64>(this.end - this.p)) return false;
    const hs = r.headers;
    hs.length = 0;
    for (let i: u32 = 0; i < hn; i++) {
      const k = this.bytes(false);
      const v = this.bytes(true);
      if (this.bad) return false;
      hs.push(new Header(changetype<Uint8Array>(k), v));
    }
    return !this.bad;
  }
}

// The last topic name decoded, as bytes and as a string.
let lastName = new ArrayBuffer(0);
let lastNameStr: string = "";

function topicName(p: usize, n: u32): string {
  if (<u32>lastName.byteLength == n && memory.compare(p, changetype<usize>(lastName), n) == 0) {
    return lastNameStr;
  }
  const b = new ArrayBuffer(<i32>n);
  memory.copy(changetype<usize>(b), p, n);
  lastName = b;
  lastNameStr = String.UTF8.decodeUnsafe(p, n);
  return lastNameStr;
}

// The abort handler below may run before this file's globals are
// initialized (an abort during start-up), so it keeps its state in static
// memory, reached through functions, rather than in globals.

// Abort.Cap is the size of an abort's failure message buffer (an enum, not a
// global, for the same reason).
const enum Abort {
  Cap = 512,
}

// abortBuf holds an abort's failure message: static memory, because an abort
// may come from the allocator running out of memory.
function abortBuf(): usize {
  return memory.data(Abort.Cap);
}

// currentSlot holds the address of the record being handled, 0 between
// records: an abort's failure message names it. It is always rec, which a
// global keeps alive, so holding its address without a reference is safe.
function currentSlot(): usize {
  return memory.data(sizeof<usize>());
}

function setCurrent(r: Record | null): void {
  store<usize>(currentSlot(), changetype<usize>(r));
}

// abortHandler replaces AssemblyScript's abort (the build passes
// --use abort=...), which would otherwise be imported from "env", an import
// the host refuses. It reports the message through fail and traps, which
// fails the batch. It does not allocate: characters outside ASCII are
// written as '?'.
export function abortHandler(
  message: string | null,
  fileName: string | null,
  line: u32,
  column: u32,
): void {
  let n: i32 = 0;
  const rp = load<usize>(currentSlot());
  if (rp != 0) {
    const r = changetype<Record>(rp);
    n = putASCII(n, r.topic);
    n = putASCII(n, "/");
    n = putInt(n, r.partition);
    n = putASCII(n, "@");
    n = putInt(n, r.offset);
    n = putASCII(n, ": ");
  }
  n = putASCII(n, "sdk: abort: ");
  if (message !== null) n = putASCII(n, message);
  if (fileName !== null) {
    n = putASCII(n, " at ");
    n = putASCII(n, fileName);
    n = putASCII(n, ":");
    n = putInt(n, line);
    n = putASCII(n, ":");
    n = putInt(n, column);
  }
  abi.fail(abortBuf(), n);
  unreachable();
}

// putInt writes v in decimal to abortBuf at n and returns the new length.
function putInt(n: i32, v: i64): i32 {
  const buf = abortBuf();
  if (v < 0) {
    if (n < Abort.Cap) store<u8>(buf + n++, 0x2d);
    v = -v; // i64.MIN_VALUE stays negative: its digits come out as '?' below
  }
  let digits: i32 = 1;
  for (let t = v; t >= 10; t /= 10) digits++;
  if (n + digits > Abort.Cap) return n;
  for (let i = digits - 1; i >= 0; i--) {
    const d = <i32>(v % 10);
    store<u8>(buf + n + i, d >= 0 ? 0x30 + d : 0x3f);
    v /= 10;
  }
  return n + digits;
}

// putASCII writes s to abortBuf at n and returns the new length.
function putASCII(n: i32, s: string): i32 {
  const buf = abortBuf();
  for (let i = 0; i < s.length && n < Abort.Cap; i++) {
    const c = s.charCodeAt(i);
    store<u8>(buf + n, c < 0x20 || c > 0x7e ? 0x3f : c);
    n++;
  }
  return n;
}
