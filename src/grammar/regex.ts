// Regular expressions (guided_regex) as a byte automaton: parsed into a Thompson NFA over code
// points, run as a set of NFA states; UTF-8 is decoded on the way, and a partial character is let
// through only when some transition accepts a code point it can still become. The whole output
// must match (the pattern is anchored at both ends, as vLLM's guided_regex is).
// Supported: literals, escapes (\d \w \s and their negations, \n \t \r \f \v \uXXXX, escaped
// punctuation), classes [...] with ranges and negation, '.', groups ( ) (?: ) (?<name> ),
// alternation, and the quantifiers * + ? {n} {n,} {n,m} (lazy forms match the same strings).
import { type ByteAutomaton, cpRange, type Utf8, UTF8_IDLE, utf8Key, utf8Len, utf8Step } from "./automaton.ts";
import { GrammarError } from "./schema.ts";

type Ranges = [number, number][]; // sorted, disjoint code point ranges
type Ast =
  | { t: "set"; r: Ranges }
  | { t: "cat"; xs: Ast[] }
  | { t: "alt"; xs: Ast[] }
  | { t: "rep"; x: Ast; min: number; max: number };

const MAX_CP = 0x10ffff, MAX_STATES = 20000;
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

class Parser {
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

/** A Thompson NFA: edges[s] = transitions on code point ranges; eps[s] = empty moves. */
interface Nfa {
  edges: { r: Ranges; to: number }[][];
  eps: number[][];
  start: number;
  accept: number;
}

function build(ast: Ast): Nfa {
  const edges: { r: Ranges; to: number }[][] = [], eps: number[][] = [];
  const node = () => {
    if (edges.length >= MAX_STATES) throw new GrammarError("regex is too large (bounded repetitions expand it)");
    edges.push([]); eps.push([]); return edges.length - 1;
  };
  const frag = (a: Ast): [number, number] => {
    const s = node();
    switch (a.t) {
      case "set": { const e = node(); edges[s].push({ r: a.r, to: e }); return [s, e]; }
      case "cat": {
        let end = s;
        for (const x of a.xs) { const [xs, xe] = frag(x); eps[end].push(xs); end = xe; }
        return [s, end];
      }
      case "alt": {
        const e = node();
        for (const x of a.xs) { const [xs, xe] = frag(x); eps[s].push(xs); eps[xe].push(e); }
        return [s, e];
      }
      case "rep": {
        let end = s;
        for (let k = 0; k < a.min; k++) { const [xs, xe] = frag(a.x); eps[end].push(xs); end = xe; }
        if (a.max === Infinity) {
          const [xs, xe] = frag(a.x), e = node();
          eps[end].push(xs, e); eps[xe].push(xs, e);
          return [s, e];
        }
        const e = node();
        for (let k = a.min; k < a.max; k++) { const [xs, xe] = frag(a.x); eps[end].push(xs, e); end = xe; }
        eps[end].push(e);
        return [s, e];
      }
    }
  };
  const [start, accept] = frag(ast);
  return { edges, eps, start, accept };
}

export interface RegexState {
  id: number; // the interned set of NFA states (closed under empty moves)
  u: Utf8; // a character in progress
}

/** The NFA run as a lazily built DFA: each distinct state set gets an id, and its moves on ASCII
 * characters are a table, so the mask walk costs one array read per trie edge. */
export class RegexAutomaton implements ByteAutomaton<RegexState> {
  readonly init: RegexState;
  private readonly nfa: Nfa;
  private readonly dist: Float64Array; // fewest bytes from each NFA state to acceptance
  private readonly sets: (readonly number[])[] = [];
  private readonly setIds = new Map<string, number>();
  private readonly ascii: Int32Array[] = []; // per set: next set id on each ASCII byte (-1 none, -2 not yet known)
  private readonly wide = new Map<string, number>(); // moves on other code points
  private readonly closeDist: number[] = [];

  constructor(readonly source: string) {
    this.nfa = build(new Parser(source).parse());
    this.dist = distances(this.nfa);
    this.init = { id: this.intern(this.close([this.nfa.start])), u: UTF8_IDLE };
    if (!Number.isFinite(this.minClose(this.init))) throw new GrammarError(`regex ${JSON.stringify(source)} matches nothing`);
  }

  private intern(set: number[]): number {
    const k = set.join(",");
    let id = this.setIds.get(k);
    if (id === undefined) {
      if (this.sets.length >= MAX_STATES * 4) throw new GrammarError("regex needs too many states");
      id = this.sets.length;
      this.sets.push(set);
      this.setIds.set(k, id);
      this.ascii.push(new Int32Array(128).fill(-2));
      let m = Infinity;
      for (const q of set) m = Math.min(m, this.dist[q]);
      this.closeDist.push(m);
    }
    return id;
  }

  private close(states: Iterable<number>): number[] {
    const seen = new Set<number>(), stack = [...states];
    while (stack.length) {
      const s = stack.pop()!;
      if (seen.has(s)) continue;
      seen.add(s);
      for (const t of this.nfa.eps[s]) stack.push(t);
    }
    return [...seen].filter((s) => this.nfa.edges[s].length || s === this.nfa.accept).sort((a, b) => a - b);
  }

  private moveSlow(id: number, cp: number): number {
    const next: number[] = [];
    for (const s of this.sets[id]) for (const e of this.nfa.edges[s]) if (e.r.some(([a, b]) => cp >= a && cp <= b)) next.push(e.to);
    return next.length ? this.intern(this.close(next)) : -1;
  }

  private move(id: number, cp: number): number {
    if (cp < 128) {
      const row = this.ascii[id];
      if (row[cp] === -2) row[cp] = this.moveSlow(id, cp);
      return row[cp];
    }
    const k = `${id};${cp}`;
    let r = this.wide.get(k);
    if (r === undefined) {
      r = this.moveSlow(id, cp);
      if (this.wide.size > 65536) this.wide.clear();
      this.wide.set(k, r);
    }
    return r;
  }

  step(s: RegexState, b: number): RegexState | null {
    if (s.u.need === 0 && b < 0x80) {
      const id = this.move(s.id, b);
      return id < 0 ? null : { id, u: UTF8_IDLE };
    }
    const r = utf8Step(s.u, b);
    if (!r) return null;
    if ("cp" in r) {
      const id = this.move(s.id, r.cp);
      return id < 0 ? null : { id, u: UTF8_IDLE };
    }
    const [lo, hi] = cpRange(r.partial);
    return this.some(this.sets[s.id], lo, hi) ? { id: s.id, u: r.partial } : null;
  }

  private some(set: readonly number[], lo: number, hi: number): boolean {
    for (const s of set) for (const e of this.nfa.edges[s]) if (e.r.some(([a, b]) => a <= hi && b >= lo)) return true;
    return false;
  }

  accepting(s: RegexState): boolean {
    return s.u.need === 0 && this.sets[s.id].includes(this.nfa.accept);
  }

  minClose(s: RegexState): number {
    if (s.u.need === 0) return this.closeDist[s.id];
    let m = Infinity;
    const [lo, hi] = cpRange(s.u);
    for (const q of this.sets[s.id]) for (const e of this.nfa.edges[q]) if (e.r.some(([a, b]) => a <= hi && b >= lo)) m = Math.min(m, s.u.need + this.dist[e.to]);
    return m;
  }

  key(s: RegexState): string {
    return `${s.id};${utf8Key(s.u)}`;
  }
}

/** Fewest bytes from each state to acceptance (Bellman-Ford over the small NFA). */
function distances(nfa: Nfa): Float64Array {
  const d = new Float64Array(nfa.edges.length).fill(Infinity);
  d[nfa.accept] = 0;
  for (let changed = true; changed;) {
    changed = false;
    for (let s = 0; s < d.length; s++) {
      let m = d[s];
      for (const t of nfa.eps[s]) m = Math.min(m, d[t]);
      for (const e of nfa.edges[s]) m = Math.min(m, utf8Len(e.r[0][0]) + d[e.to]);
      if (m < d[s]) { d[s] = m; changed = true; }
    }
  }
  return d;
}
