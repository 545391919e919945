// A JSON string value, byte by byte: escapes, UTF-8 validity, minLength/maxLength counted in
// characters (an escape is one), and `pattern` (as JSON Schema means it: a search for the regex in
// the decoded string). Under a pattern every character goes through the regex as it is written,
// escapes as the character they stand for; \u escapes are left out there, so that no prefix is let
// through that no continuation could match.
import { type Utf8, UTF8_IDLE, utf8Key, utf8Step } from "./automaton.ts";
import type { RegexAutomaton, RegexState } from "./regex.ts";
import type { Node } from "./schema.ts";

type Str = Extract<Node, { t: "str" }>;

export interface StrFrame {
  k: "str";
  n: Str;
  o: boolean; // the opening quote is written
  c: number; // characters so far (capped at minLength when there is no maxLength)
  e: number; // 0; 1 after '\'; 2..5 inside \uXXXX
  u: Utf8; // a character in progress
  end: boolean; // the closing quote is written
  r: RegexState | null; // the pattern's state
}

const Q = 0x22, BS = 0x5c;
const ESCAPED: Record<number, number> = { 0x22: 0x22, 0x5c: 0x5c, 0x2f: 0x2f, 0x62: 8, 0x66: 12, 0x6e: 10, 0x72: 13, 0x74: 9 };
const isHex = (b: number) => (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);

export function startString(n: Str): StrFrame {
  return { k: "str", n, o: false, c: 0, e: 0, u: UTF8_IDLE, end: false, r: n.re ? n.re.init : null };
}

/** The pattern's state after the bytes of one character (an escape's). */
function feed(re: RegexAutomaton, r: RegexState, cp: number): RegexState | null {
  let s: RegexState | null = r;
  for (const b of new TextEncoder().encode(String.fromCodePoint(cp))) if ((s = s && re.step(s, b)) === null) return null;
  return s;
}

export function stepString(f: StrFrame, b: number): StrFrame | null {
  const g = stepChars(f, b);
  // under a pattern and a maxLength, the pattern must still be completable in the characters left
  if (g && g.r && g.n.max !== Infinity && !g.end && g.n.re!.minChars(g.r) > g.n.max - g.c - (g.u.need ? 1 : 0)) return null;
  return g;
}

function stepChars(f: StrFrame, b: number): StrFrame | null {
  const n = f.n, re = n.re;
  if (!f.o) return b === Q ? { ...f, o: true } : null;
  if (f.end) return null;
  const one = (g: Partial<StrFrame>): StrFrame => {
    const c = f.c + 1;
    return { ...f, ...g, c: n.max === Infinity ? Math.min(c, n.min) : c };
  };
  if (f.e === 1) {
    const cp = ESCAPED[b];
    if (cp === undefined) return b === 0x75 && !re ? { ...f, e: 2 } : null; // \u, not under a pattern
    if (!re) return one({ e: 0 });
    const r = feed(re, f.r!, cp);
    return r ? one({ e: 0, r }) : null;
  }
  if (f.e >= 2) {
    // \uD800-\uDFFF (surrogates) are left out: a lone one is not a character
    if (!isHex(b) || (f.e === 2 && (b === 0x64 || b === 0x44))) return null;
    return f.e === 5 ? one({ e: 0 }) : { ...f, e: f.e + 1 };
  }
  // plain characters reach the pattern as their own bytes
  const r = re && f.r ? re.step(f.r, b) : null;
  if (f.u.need > 0) {
    const u = utf8Step(f.u, b);
    if (!u || (re && !r)) return null;
    return "cp" in u ? one({ u: UTF8_IDLE, r }) : { ...f, u: u.partial, r };
  }
  if (b === Q) return f.c >= n.min && (!re || re.accepting(f.r!)) ? { ...f, end: true } : null;
  if (f.c >= n.max || b < 0x20) return null;
  // under a pattern, an escape only where some escaped character may come
  if (b === BS) return !re || Object.values(ESCAPED).some((cp) => fits(f, feed(re, f.r!, cp))) ? { ...f, e: 1 } : null;
  if (re && !r) return null;
  const u = utf8Step(UTF8_IDLE, b);
  if (!u) return null;
  return "cp" in u ? one({ r }) : { ...f, u: u.partial, r };
}

/** The pattern can still be completed from r within maxLength, one more character written. */
function fits(f: StrFrame, r: RegexState | null): boolean {
  return r !== null && (f.n.max === Infinity || f.n.re!.minChars(r) <= f.n.max - f.c - 1);
}

/** Between characters of a string without a pattern: any plain content token that fits may come. */
export function stringFreeText(f: StrFrame): { max: number; short: number } | null {
  return f.o && !f.end && f.e === 0 && f.u.need === 0 && !f.n.re ? { max: f.n.max - f.c, short: Math.max(0, f.n.min - f.c) } : null;
}

export function stringMin(f: StrFrame): number {
  if (f.end) return 0;
  if (!f.o) return f.n.minLen;
  const pending = f.e === 1 ? 1 : f.e >= 2 ? 6 - f.e : f.u.need;
  const chars = pending + Math.max(0, f.n.min - f.c - (pending ? 1 : 0));
  // the pattern's own shortest completion (in bytes of the decoded text; escapes are rare there)
  const re = f.n.re;
  if (!re) return chars + 1;
  if (f.e !== 1) return Math.max(chars, re.minJson(f.r!)) + 1;
  let best = Infinity; // after '\': the cheapest escaped character, then the rest of the pattern
  for (const cp of Object.values(ESCAPED)) {
    const r = feed(re, f.r!, cp);
    if (r) best = Math.min(best, 1 + re.minJson(r));
  }
  return best + 1;
}

export function stringKey(f: StrFrame): string {
  return `s${f.n.min},${f.n.max},${f.n.re ? f.n.re.source : ""},${+f.o}${+f.end},${f.c},${f.e},${utf8Key(f.u)},${f.r ? f.r.id + ";" + utf8Key(f.r.u) : ""}`;
}
