// The byte-level automaton every constraint compiles to. States are immutable values: stepping
// returns a new state (or null when the byte cannot continue a valid output), so the mask walk can
// branch from one state into every child of a trie node without copying or undoing anything.

export interface ByteAutomaton<S = unknown> {
  readonly init: S;
  /** The state after byte b, or null when no valid output continues that way. */
  step(s: S, b: number): S | null;
  /** The bytes so far are a complete output. */
  accepting(s: S): boolean;
  /** The fewest bytes that complete the output from s (0 when accepting). With one single-byte
   * token per byte, as byte-level BPE vocabularies have, that many tokens always suffice: this is
   * what lets the mask steer a bounded output to close within max_tokens. */
  minClose(s: S): number;
  /** Equal keys, equal futures: the key under which masks are cached. */
  key(s: S): string;
  /** When s is between characters of a JSON string: how many more characters it may take (any
   * plain content token that fits leaves it in a state as good as s) and how many it still must
   * (minLength). Else null. */
  freeText?(s: S): { max: number; short: number } | null;
}

/** UTF-8 validity as a tiny state machine: how many continuation bytes are still due, and the
 * range the next one must fall in (which rules out overlong forms and surrogates), plus the code
 * point bits so far. `cpRange` gives the code points any completion of a partial sequence can be. */
export interface Utf8 {
  need: number; // continuation bytes still due (0 = between characters)
  lo: number; // allowed range of the next continuation byte
  hi: number;
  cp: number; // bits so far
}

export const UTF8_IDLE: Utf8 = Object.freeze({ need: 0, lo: 0x80, hi: 0xbf, cp: 0 });

/** Feeds one byte: a whole character ({cp}), a partial one ({partial}) or null (invalid). */
export function utf8Step(u: Utf8, b: number): { cp: number } | { partial: Utf8 } | null {
  if (u.need === 0) {
    if (b < 0x80) return { cp: b };
    if (b >= 0xc2 && b <= 0xdf) return { partial: { need: 1, lo: 0x80, hi: 0xbf, cp: b & 0x1f } };
    if (b >= 0xe0 && b <= 0xef)
      return { partial: { need: 2, lo: b === 0xe0 ? 0xa0 : 0x80, hi: b === 0xed ? 0x9f : 0xbf, cp: b & 0x0f } };
    if (b >= 0xf0 && b <= 0xf4)
      return { partial: { need: 3, lo: b === 0xf0 ? 0x90 : 0x80, hi: b === 0xf4 ? 0x8f : 0xbf, cp: b & 0x07 } };
    return null;
  }
  if (b < u.lo || b > u.hi) return null;
  const cp = (u.cp << 6) | (b & 0x3f);
  if (u.need === 1) return { cp };
  return { partial: { need: u.need - 1, lo: 0x80, hi: 0xbf, cp } };
}

/** The code points a partial sequence can still become. */
export function cpRange(u: Utf8): [number, number] {
  // the next byte's range (which rules out overlong forms) bounds it; later bytes are free
  const span = 6 * (u.need - 1);
  return [(u.cp * 64 + (u.lo & 0x3f)) * 2 ** span, (u.cp * 64 + (u.hi & 0x3f)) * 2 ** span + 2 ** span - 1];
}

/** UTF-8 length of a code point. */
export function utf8Len(cp: number): number {
  return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

export const utf8Key = (u: Utf8): string => (u.need ? `${u.need}.${u.lo}.${u.hi}.${u.cp}` : "");
