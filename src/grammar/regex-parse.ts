// The regular expression syntax guided_regex accepts, parsed into a small AST over code point
// ranges. Supported: literals, escapes (\d \w \s and their negations, \n \t \r \f \v \uXXXX \xXX,
// escaped punctuation), classes [...] with ranges and negation, '.', groups ( ) (?: ) (?<name> ),
// alternation, and the quantifiers * + ? {n} {n,} {n,m} (lazy forms match the same strings);
// ^ and $ only at the ends. Anything else (lookarounds, backreferences, \b) is refused.
import { GrammarError } from "./error.ts";

export type Ranges = [number, number][]; // sorted, disjoint code point ranges
export type Ast =
  | { t: "set"; r: Ranges }
  | { t: "cat"; xs: Ast[] }
  | { t: "alt"; xs: Ast[] }
  | { t: "rep"; x: Ast; min: number; max: number };

const MAX_CP = 0x10ffff;
const DIGIT: Ranges = [[0x30, 0x39]];
const WORD: Ranges = [[0x30, 0x39], [0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]];
const SPACE: Ranges = [[0x09, 0x0d], [0x20, 0x20]];

function normalize(r: Ranges): Ranges {
  const s = [...r].sort((a, b) => a[0] - b[0]), out: Ranges = [];
  for (const [a, b] of s) {
    const last = out[out.length - 1];
    if (last && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}
function negate(r: Ranges): Ranges {
  const out: Ranges = [];
  let at = 0;
  for (const [a, b] of normalize(r)) {
    if (a > at) out.push([at, a - 1]);
    at = b + 1;
  }
  if (at <= MAX_CP) out.push([at, MAX_CP]);
  return out;
}

export class Parser {
  i = 0;
  constructor(readonly src: string) {}
  fail(msg: string): never {
    throw new GrammarError(`regex ${JSON.stringify(this.src)} at ${this.i}: ${msg}`);
  }
  parse(): Ast {
    if (this.src.startsWith("^")) this.i = 1;
    const a = this.alt();
    if (this.i < this.src.length) this.fail("unbalanced ')'");
    return a;
  }
  alt(): Ast {
    const xs = [this.cat()];
    while (this.src[this.i] === "|") { this.i++; xs.push(this.cat()); }
    return xs.length === 1 ? xs[0] : { t: "alt", xs };
  }
  cat(): Ast {
    const xs: Ast[] = [];
    while (this.i < this.src.length && this.src[this.i] !== "|" && this.src[this.i] !== ")") {
      if (this.src[this.i] === "$" && (this.i === this.src.length - 1 || "|)".includes(this.src[this.i + 1]))) { this.i++; continue; }
      xs.push(this.quant(this.atom()));
    }
    return { t: "cat", xs };
  }
  quant(x: Ast): Ast {
    for (;;) {
      const c = this.src[this.i];
      let min: number, max: number;
      if (c === "*") [min, max] = [0, Infinity];
      else if (c === "+") [min, max] = [1, Infinity];
      else if (c === "?") [min, max] = [0, 1];
      else if (c === "{" && /^\{\d+(,\d*)?\}/.test(this.src.slice(this.i))) {
        const m = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.i))!;
        min = Number(m[1]);
        max = m[2] === undefined ? min : m[3] === "" ? Infinity : Number(m[3]);
        if (max < min) this.fail("{n,m} with m < n");
        this.i += m[0].length - 1;
      } else return x;
      this.i++;
      if (this.src[this.i] === "?") this.i++; // lazy: same language
      else if (this.src[this.i] === "+") this.fail("possessive quantifiers are not supported");
      x = { t: "rep", x, min, max };
    }
  }
  atom(): Ast {
    const c = this.src[this.i++];
    if (c === "(") {
      if (this.src[this.i] === "?") {
        const m = /^\?(:|<[A-Za-z_][A-Za-z0-9_]*>|P<[A-Za-z_][A-Za-z0-9_]*>)/.exec(this.src.slice(this.i));
        if (!m) this.fail("lookarounds and inline flags are not supported");
        this.i += m[0].length;
      }
      const a = this.alt();
      if (this.src[this.i++] !== ")") this.fail("missing ')'");
      return a;
    }
    if (c === "[") return { t: "set", r: this.klass() };
    if (c === ".") return { t: "set", r: negate([[0x0a, 0x0a]]) };
    if (c === "\\") return { t: "set", r: this.escape(false) };
    if (c === "^" || c === "$") this.fail("anchors are only supported at the ends");
    if (c === "*" || c === "+" || c === "?") this.fail("nothing to repeat");
    const cp = this.src.codePointAt(this.i - 1)!;
    if (cp > 0xffff) this.i++;
    return { t: "set", r: [[cp, cp]] };
  }
  escape(inClass: boolean): Ranges {
    const c = this.src[this.i++];
    if (c === undefined) this.fail("dangling '\\'");
    switch (c) {
      case "d": return DIGIT;
      case "D": return negate(DIGIT);
      case "w": return WORD;
      case "W": return negate(WORD);
      case "s": return SPACE;
      case "S": return negate(SPACE);
      case "n": return [[10, 10]];
      case "t": return [[9, 9]];
      case "r": return [[13, 13]];
      case "f": return [[12, 12]];
      case "v": return [[11, 11]];
      case "0": return [[0, 0]];
      case "u": case "x": {
        const n = c === "u" ? 4 : 2, h = this.src.slice(this.i, this.i + n);
        if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(h)) this.fail(`bad \\${c} escape`);
        this.i += n;
        const cp = parseInt(h, 16);
        return [[cp, cp]];
      }
      case "b": if (inClass) return [[8, 8]]; this.fail("\\b is not supported");
      default:
        if (/[A-Za-z0-9]/.test(c)) this.fail(`\\${c} is not supported`);
        return [[c.charCodeAt(0), c.charCodeAt(0)]];
    }
  }
  klass(): Ranges {
    const neg = this.src[this.i] === "^";
    if (neg) this.i++;
    const r: Ranges = [];
    let first = true;
    for (;;) {
      if (this.i >= this.src.length) this.fail("missing ']'");
      let c = this.src[this.i];
      if (c === "]" && !first) { this.i++; break; }
      first = false;
      this.i++;
      let lo: Ranges;
      if (c === "\\") lo = this.escape(true);
      else { const cp = this.src.codePointAt(this.i - 1)!; if (cp > 0xffff) this.i++; lo = [[cp, cp]]; }
      if (this.src[this.i] === "-" && this.src[this.i + 1] !== "]" && this.i + 1 < this.src.length && lo.length === 1 && lo[0][0] === lo[0][1]) {
        this.i++;
        c = this.src[this.i++];
        const hi = c === "\\" ? this.escape(true) : [[this.src.codePointAt(this.i - 1)!, this.src.codePointAt(this.i - 1)!]] as Ranges;
        if (hi.length !== 1 || hi[0][0] !== hi[0][1] || hi[0][0] < lo[0][0]) this.fail("bad range in class");
        if (hi[0][0] > 0xffff) this.i++;
        r.push([lo[0][0], hi[0][0]]);
      } else r.push(...lo);
    }
    return neg ? negate(r) : normalize(r);
  }
}

