// wordcount-as is plugins/wordcount written with the AssemblyScript SDK: the
// same two stages, topics, store and encodings, so that one pipeline config
// runs either module.
//
//   - A record of any input topic but "words" carries a sentence in its
//     value. It is split on white space; each word is lower-cased, stripped
//     of leading and trailing punctuation and, unless that leaves it empty,
//     emitted to topic "words" with the word as key and "1" as value.
//   - A record of topic "words" adds one to the count of its key in store
//     "counts" (8-byte big-endian int64) and emits the new count to topic
//     "word-counts": key the word, value the count in decimal ASCII.
//     Records with an empty or null key are skipped.
//
// "White space", "punctuation" and "lower-case" are Go's (unicode.IsSpace,
// unicode.IsPunct, unicode.ToLower), from tables generated into unicode.ts,
// and invalid UTF-8 is treated as Go treats it, so both plugins count the
// same words for any input.
//
// Build: scripts/asbuild.sh (writes bin/plugins/wordcount-as.wasm).

import { Out, Record, Store, onRecord } from "../../../sdk/assemblyscript/assembly/index";
import {
  RUNE_ERROR,
  decodeLastRune,
  decodeRune,
  encodeRune,
  isPunct,
  isSpace,
  runeWidth,
  toLower,
} from "./text";

export * from "../../../sdk/assemblyscript/assembly/exports";

// Topic names.
const WORDS_TOPIC = "words";
const COUNTS_TOPIC = "word-counts";

const counts = new Store("counts");

const ONE = Uint8Array.wrap(String.UTF8.encode("1"));

// lowerBuf receives a lower-cased word; it grows to the longest. 3 bytes per
// input byte always suffice: a rune's lower case is at most one byte longer
// than the rune, and an invalid byte becomes U+FFFD, 3 bytes.
let lowerBuf = new ArrayBuffer(256);

// decBuf receives the decimal text of a count.
const decBuf = new ArrayBuffer(24);

function process(r: Record, out: Out): Error | null {
  if (r.topic == WORDS_TOPIC) return count(r.key, out);
  return split(r.value, out);
}

// split emits each word of sentence to the words topic.
function split(sentence: Uint8Array | null, out: Out): Error | null {
  if (sentence === null) return null;
  const base = sentence.dataStart;
  const end = base + <usize>sentence.byteLength;
  let p = base;
  while (p < end) {
    // Skip white space, then take the field up to the next white space,
    // as strings.Fields does.
    let r = decodeRune(p, end);
    if (isSpace(r)) {
      p += runeWidth;
      continue;
    }
    const fs = p;
    while (p < end) {
      r = decodeRune(p, end);
      if (isSpace(r)) break;
      p += runeWidth;
    }
    const err = emitWord(sentence, fs, p, out);
    if (err !== null) return err;
  }
  return null;
}

// emitWord trims the punctuation off the field [fs, fe) of sentence, lower-
// cases what is left and, unless it is empty, emits it.
function emitWord(sentence: Uint8Array, fs: usize, fe: usize, out: Out): Error | null {
  // strings.TrimLeftFunc: skip leading punctuation.
  let ws = fs;
  while (ws < fe) {
    const r = decodeRune(ws, fe);
    if (!isPunct(r)) break;
    ws += runeWidth;
  }
  if (ws == fe) return null;
  // strings.TrimRightFunc: find the start of the last rune that is not
  // punctuation, then step over it as TrimRightFunc does (decoding forward).
  let j = fe;
  while (j > ws) {
    const r = decodeLastRune(ws, j);
    j -= runeWidth;
    if (!isPunct(r)) break;
  }
  let we: usize;
  if (load<u8>(j) >= 0x80) {
    decodeRune(j, fe);
    we = j + runeWidth;
  } else {
    we = j + 1;
  }

  // strings.ToLower. A word that is already lower-case ASCII, the common
  // case, is emitted as a view of the sentence.
  let plain = true;
  for (let p = ws; p < we; p++) {
    const c = load<u8>(p);
    if (c >= 0x80 || (c >= 0x41 && c <= 0x5a)) {
      plain = false;
      break;
    }
  }
  const n = <i32>(we - ws);
  if (plain) {
    const word = Uint8Array.wrap(sentence.buffer, sentence.byteOffset + <i32>(ws - sentence.dataStart), n);
    return out.emit(WORDS_TOPIC, word, ONE);
  }
  if (3 * n > lowerBuf.byteLength) lowerBuf = new ArrayBuffer(max(3 * n, 2 * lowerBuf.byteLength));
  const dst = changetype<usize>(lowerBuf);
  let m = 0;
  for (let p = ws; p < we; ) {
    let r = decodeRune(p, we);
    p += runeWidth;
    if (r != RUNE_ERROR) r = toLower(r); // an invalid byte becomes U+FFFD, as in strings.Map
    m += encodeRune(dst + m, r);
  }
  return out.emit(WORDS_TOPIC, Uint8Array.wrap(lowerBuf, 0, m), ONE);
}

// count adds one to word's count and emits the new count.
function count(word: Uint8Array | null, out: Out): Error | null {
  if (word === null || word.byteLength == 0) return null;
  const got = counts.getInt64(word);
  if (got.err !== null) return got.err;
  const n = got.value + 1;
  const err = counts.putInt64(word, n);
  if (err !== null) return err;
  return out.emit(COUNTS_TOPIC, word, decimal(n));
}

// decimal returns n in decimal ASCII (strconv.AppendInt), a view of decBuf
// valid until the next call.
function decimal(n: i64): Uint8Array {
  const base = changetype<usize>(decBuf);
  let p = <usize>decBuf.byteLength;
  let u: u64 = n < 0 ? <u64>(-n) : <u64>n; // -i64.MIN_VALUE wraps to its own magnitude as u64
  do {
    p--;
    store<u8>(base + p, <u8>(0x30 + <i32>(u % 10)));
    u /= 10;
  } while (u != 0);
  if (n < 0) {
    p--;
    store<u8>(base + p, 0x2d);
  }
  return Uint8Array.wrap(decBuf, <i32>p, decBuf.byteLength - <i32>p);
}

// The registration comes last, after the globals process uses:
// AssemblyScript refuses a reference to a function that reads a global
// declared further down.
onRecord(process);
