// The AssemblyScript SDK's implementation of the conformance processor
// (conformance/SPEC.md): each input record's value is a command (put, get,
// delete, range, emit, log, fail, ...) run through the SDK, with its result
// emitted to topic "results". It mirrors the Go SDK's guest/go/main.go.
//
// Build: scripts/asbuild.sh (writes bin/conformance/as.wasm).

import {
  Header,
  Level,
  Out,
  Record,
  Store,
  bytes,
  codeName,
  errorCode,
  log,
  onRecord,
  str,
} from "../../../sdk/assemblyscript/assembly/index";

export * from "../../../sdk/assemblyscript/assembly/exports";

// stores are the handles of the stores the scripts name, resolved on first
// use; an undeclared store's handle fails every call with NOT_FOUND.
const stores = new Map<string, Store>();

function storeOf(name: Uint8Array | null): Store {
  const s = str(name);
  if (!stores.has(s)) stores.set(s, new Store(s));
  return stores.get(s);
}

// badCommand fails the batch of a record that is not a command.
const badCommand = new Error("bad command");

// arities gives each command's number of arguments; -1 is variable.
const arities = new Map<string, i32>();
arities.set("put", 3);
arities.set("putn", 3);
arities.set("get", 2);
arities.set("checkn", 2);
arities.set("delete", 2);
arities.set("count", 2);
arities.set("range", 3);
arities.set("rangen", 3);
arities.set("emit", -1);
arities.set("record", 0);
arities.set("log", 2);
arities.set("fail", 1);

const levels = new Map<string, Level>();
levels.set("debug", Level.Debug);
levels.set("info", Level.Info);
levels.set("warn", Level.Warn);
levels.set("error", Level.Error);

const EMPTY = new Uint8Array(0);

// orEmpty passes a null word (~) as empty where the SDK takes bytes, as the
// Go processor's nil slices are.
function orEmpty(b: Uint8Array | null): Uint8Array {
  return b === null ? EMPTY : b;
}

function process(r: Record, out: Out): Error | null {
  const value = r.value;
  if (value === null) return badCommand;
  const words = decodeWords(value);
  if (words === null || words.length == 0) return badCommand;
  const name = str(words[0]);
  const args = words.slice(1);
  if (!arities.has(name)) return badCommand;
  const arity = arities.get(name);
  if (arity >= 0 && args.length != arity) return badCommand;
  if (name == "emit" && (args.length < 3 || args.length % 2 == 0)) return badCommand;

  let err: Error | null = null;
  const res = new Writer();
  if (name == "put") {
    err = storeOf(args[0]).put(orEmpty(args[1]), orEmpty(args[2]));
  } else if (name == "putn") {
    const n = atoi(args[2]);
    if (n < 0) return badCommand;
    err = storeOf(args[0]).put(orEmpty(args[1]), pattern(n));
  } else if (name == "get") {
    const g = storeOf(args[0]).get(orEmpty(args[1]));
    err = g.err;
    const v = g.value;
    if (v === null) {
      res.ascii("absent");
    } else {
      res.ascii("found ");
      res.enc(v);
    }
  } else if (name == "checkn") {
    const g = storeOf(args[0]).get(orEmpty(args[1]));
    err = g.err;
    const v = g.value;
    if (v === null) {
      res.ascii("absent");
    } else {
      res.ascii(isPattern(v) ? "pattern " : "other ");
      res.int(v.length);
    }
  } else if (name == "delete") {
    err = storeOf(args[0]).delete(orEmpty(args[1]));
  } else if (name == "count") {
    const s = storeOf(args[0]);
    const key = orEmpty(args[1]);
    const g = s.getInt64(key);
    err = g.err;
    if (err === null) {
      err = s.putInt64(key, g.value + 1);
      res.ascii("count ");
      res.int(g.value + 1);
    }
  } else if (name == "range" || name == "rangen") {
    err = rangeOf(res, storeOf(args[0]), args[1], args[2], name == "rangen");
  } else if (name == "emit") {
    const hs: Header[] = [];
    for (let k = 3; k < args.length; k += 2) {
      const hk = args[k];
      if (hk === null) return badCommand;
      hs.push(new Header(hk, args[k + 1]));
    }
    err = out.emit(str(args[0]), args[1], args[2], hs);
  } else if (name == "record") {
    describe(res, r);
  } else if (name == "log") {
    const level = str(args[0]);
    if (!levels.has(level)) return badCommand;
    log(levels.get(level), str(args[1]));
  } else if (name == "fail") {
    return new Error("fail command: " + str(args[0]));
  }
  if (err !== null) {
    const code = errorCode(err);
    const e = new Writer();
    e.ascii("error ");
    e.ascii(code != 0 ? codeName(code) : "?");
    return out.emit("results", r.key, e.bytes());
  }
  if (res.n > 0) return out.emit("results", r.key, res.bytes());
  return null;
}

// rangeOf runs a range command, writing its result to w.
function rangeOf(w: Writer, s: Store, start: Uint8Array | null, end: Uint8Array | null, lengths: bool): Error | null {
  const it = s.range(start, end); // null and empty bounds are both open
  w.ascii(lengths ? "rangen" : "range");
  while (it.next()) {
    w.byte(0x20);
    w.enc(it.key);
    w.byte(0x3d);
    if (lengths) {
      w.int(it.value.length);
    } else {
      w.enc(it.value);
    }
  }
  it.close();
  return it.err;
}

// describe writes the result of the record command.
function describe(w: Writer, r: Record): void {
  w.ascii("record ");
  w.enc(bytes(r.topic));
  w.byte(0x20);
  w.int(r.partition);
  w.byte(0x20);
  w.int(r.offset);
  w.byte(0x20);
  w.int(r.timestamp);
  w.byte(0x20);
  w.encNullable(r.key);
  w.byte(0x20);
  w.int(r.headers.length);
  for (let i = 0; i < r.headers.length; i++) {
    const h = r.headers[i];
    w.byte(0x20);
    w.enc(h.key);
    w.byte(0x20);
    w.encNullable(h.value);
  }
}

// isPattern reports whether v is the putn pattern of its length.
function isPattern(v: Uint8Array): bool {
  for (let i = 0; i < v.length; i++) {
    if (v[i] != 0x61 + (i % 26)) return false;
  }
  return true;
}

// pattern returns the n-byte value of putn: byte i is 'a' + i % 26.
function pattern(n: i32): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = <u8>(0x61 + (i % 26));
  return b;
}

// atoi parses a decimal number as Go's strconv.Atoi does (an optional sign,
// then digits); it returns -1 for anything else, for a negative number and
// past 2^31-1, all of which are bad putn sizes.
function atoi(b: Uint8Array | null): i32 {
  if (b === null || b.length == 0) return -1;
  let i = 0;
  let neg = false;
  if (b[0] == 0x2b || b[0] == 0x2d) {
    neg = b[0] == 0x2d;
    i = 1;
  }
  if (i == b.length) return -1;
  let n: i64 = 0;
  for (; i < b.length; i++) {
    const c = b[i];
    if (c < 0x30 || c > 0x39) return -1;
    n = n * 10 + (c - 0x30);
    if (n > i32.MAX_VALUE) return -1;
  }
  if (neg && n != 0) return -1;
  return <i32>n;
}

// decodeWords splits a command into its percent-decoded words; "~" is null
// and "=" is empty. It returns null for a bad % escape.
function decodeWords(v: Uint8Array): Array<Uint8Array | null> | null {
  const words = new Array<Uint8Array | null>();
  let start = 0;
  for (let i = 0; i <= v.length; i++) {
    if (i < v.length && v[i] != 0x20) continue;
    const w = v.subarray(start, i);
    start = i + 1;
    if (w.length == 1 && w[0] == 0x7e) {
      words.push(null);
      continue;
    }
    if (w.length == 1 && w[0] == 0x3d) {
      words.push(EMPTY);
      continue;
    }
    const b = new Writer();
    for (let j = 0; j < w.length; j++) {
      if (w[j] != 0x25) {
        b.byte(w[j]);
        continue;
      }
      if (j + 2 >= w.length) return null;
      const hi = unhex(w[j + 1]);
      const lo = unhex(w[j + 2]);
      if (hi < 0 || lo < 0) return null;
      b.byte(<u8>((hi << 4) | lo));
      j += 2;
    }
    words.push(b.bytes());
  }
  return words;
}

function unhex(c: u8): i32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

const HEX = "0123456789ABCDEF";

// Writer builds a result's bytes.
class Writer {
  buf: Uint8Array = new Uint8Array(64);
  n: i32 = 0;

  byte(c: u8): void {
    if (this.n == this.buf.length) {
      const b = new Uint8Array(this.buf.length * 2);
      b.set(this.buf);
      this.buf = b;
    }
    this.buf[this.n++] = c;
  }

  // ascii writes s, which holds only ASCII characters.
  ascii(s: string): void {
    for (let i = 0; i < s.length; i++) this.byte(<u8>s.charCodeAt(i));
  }

  int(v: i64): void {
    this.ascii(v.toString());
  }

  // enc writes b for a result: printable ASCII other than %, = and ~ as
  // itself, every other byte as %XX, and the empty string as "=".
  enc(b: Uint8Array): void {
    if (b.length == 0) {
      this.byte(0x3d);
      return;
    }
    for (let i = 0; i < b.length; i++) {
      const c = b[i];
      if (c > 0x20 && c < 0x7f && c != 0x25 && c != 0x3d && c != 0x7e) {
        this.byte(c);
        continue;
      }
      this.byte(0x25);
      this.byte(<u8>HEX.charCodeAt(c >> 4));
      this.byte(<u8>HEX.charCodeAt(c & 15));
    }
  }

  encNullable(b: Uint8Array | null): void {
    if (b === null) {
      this.byte(0x7e);
    } else {
      this.enc(b);
    }
  }

  bytes(): Uint8Array {
    return this.buf.slice(0, this.n);
  }
}

// The registration comes last, after the globals process uses:
// AssemblyScript refuses a reference to a function that reads a global
// declared further down.
onRecord(process);
