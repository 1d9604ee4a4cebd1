// The text functions of Go that plugins/wordcount relies on, over UTF-8
// bytes in memory: rune decoding as unicode/utf8 does it (an invalid byte is
// U+FFFD of width 1), and the classes and case mapping of unicode.ts. They
// make this plugin split, trim and lower-case exactly as the Go one, invalid
// UTF-8 included.

import { ASCII_CLASS, LOWER, PUNCT, SPACE } from "./unicode";

export const RUNE_ERROR: i32 = 0xfffd;

// runeWidth is the width in bytes of the rune the last decodeRune or
// decodeLastRune call returned (AssemblyScript has no multiple results).
export let runeWidth: i32 = 0;

// decodeRune decodes the rune at [p, end), end > p, as utf8.DecodeRune.
export function decodeRune(p: usize, end: usize): i32 {
  const b0 = <i32>load<u8>(p);
  if (b0 < 0x80) {
    runeWidth = 1;
    return b0;
  }
  runeWidth = 1;
  const n = end - p;
  let size: usize;
  let lo: i32 = 0x80; // the range of the second byte
  let hi: i32 = 0xbf;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    size = 2;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    size = 3;
    if (b0 == 0xe0) lo = 0xa0; // no overlong encodings
    if (b0 == 0xed) hi = 0x9f; // no surrogates
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    size = 4;
    if (b0 == 0xf0) lo = 0x90; // no overlong encodings
    if (b0 == 0xf4) hi = 0x8f; // nothing past U+10FFFF
  } else {
    return RUNE_ERROR;
  }
  if (n < size) return RUNE_ERROR;
  const b1 = <i32>load<u8>(p + 1);
  if (b1 < lo || b1 > hi) return RUNE_ERROR;
  if (size == 2) {
    runeWidth = 2;
    return ((b0 & 0x1f) << 6) | (b1 & 0x3f);
  }
  const b2 = <i32>load<u8>(p + 2);
  if ((b2 & 0xc0) != 0x80) return RUNE_ERROR;
  if (size == 3) {
    runeWidth = 3;
    return ((b0 & 0x0f) << 12) | ((b1 & 0x3f) << 6) | (b2 & 0x3f);
  }
  const b3 = <i32>load<u8>(p + 3);
  if ((b3 & 0xc0) != 0x80) return RUNE_ERROR;
  runeWidth = 4;
  return ((b0 & 0x07) << 18) | ((b1 & 0x3f) << 12) | ((b2 & 0x3f) << 6) | (b3 & 0x3f);
}

// decodeLastRune decodes the rune that ends at end, within [start, end),
// end > start, as utf8.DecodeLastRune.
export function decodeLastRune(start: usize, end: usize): i32 {
  let s = end - 1;
  const last = <i32>load<u8>(s);
  if (last < 0x80) {
    runeWidth = 1;
    return last;
  }
  // Back up to a byte that can start a rune, at most 4 bytes (UTFMax).
  const lim = end - start >= 4 ? end - 4 : start;
  while (s > lim) {
    s--;
    if ((load<u8>(s) & 0xc0) != 0x80) break;
  }
  const r = decodeRune(s, end);
  if (s + runeWidth != end) {
    runeWidth = 1;
    return RUNE_ERROR;
  }
  return r;
}

// inRanges reports whether r lies in one of the sorted inclusive (lo, hi)
// pairs of t.
function inRanges(t: StaticArray<u32>, r: u32): bool {
  let lo = 0;
  let hi = t.length >> 1;
  while (lo < hi) {
    const m = (lo + hi) >>> 1;
    if (r > unchecked(t[2 * m + 1])) {
      lo = m + 1;
    } else if (r < unchecked(t[2 * m])) {
      hi = m;
    } else {
      return true;
    }
  }
  return false;
}

// isSpace is unicode.IsSpace.
export function isSpace(r: i32): bool {
  if (r < 0x80) return (unchecked(ASCII_CLASS[r]) & 1) != 0;
  return inRanges(SPACE, r);
}

// isPunct is unicode.IsPunct.
export function isPunct(r: i32): bool {
  if (r < 0x80) return (unchecked(ASCII_CLASS[r]) & 2) != 0;
  return inRanges(PUNCT, r);
}

// toLower is unicode.ToLower.
export function toLower(r: i32): i32 {
  if (r < 0x80) return r >= 0x41 && r <= 0x5a ? r + 0x20 : r;
  // The last run whose lo is <= r.
  let lo = 0;
  let hi = LOWER.length >> 2;
  while (lo < hi) {
    const m = (lo + hi) >>> 1;
    if (unchecked(LOWER[4 * m]) <= r) {
      lo = m + 1;
    } else {
      hi = m;
    }
  }
  if (lo == 0) return r;
  const i = 4 * (lo - 1);
  const start = unchecked(LOWER[i]);
  if (r > unchecked(LOWER[i + 1]) || (r - start) % unchecked(LOWER[i + 2]) != 0) return r;
  return r + unchecked(LOWER[i + 3]);
}

// encodeRune writes r, a valid rune, as UTF-8 at p and returns its width.
export function encodeRune(p: usize, r: i32): i32 {
  if (r < 0x80) {
    store<u8>(p, <u8>r);
    return 1;
  }
  if (r < 0x800) {
    store<u8>(p, <u8>(0xc0 | (r >> 6)));
    store<u8>(p + 1, <u8>(0x80 | (r & 0x3f)));
    return 2;
  }
  if (r < 0x10000) {
    store<u8>(p, <u8>(0xe0 | (r >> 12)));
    store<u8>(p + 1, <u8>(0x80 | ((r >> 6) & 0x3f)));
    store<u8>(p + 2, <u8>(0x80 | (r & 0x3f)));
    return 3;
  }
  store<u8>(p, <u8>(0xf0 | (r >> 18)));
  store<u8>(p + 1, <u8>(0x80 | ((r >> 12) & 0x3f)));
  store<u8>(p + 2, <u8>(0x80 | ((r >> 6) & 0x3f)));
  store<u8>(p + 3, <u8>(0x80 | (r & 0x3f)));
  return 4;
}
