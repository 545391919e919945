// Regular expressions (guided_regex) as a byte automaton: parsed into a Thompson NFA over code
// points, run as a set of NFA states; UTF-8 is decoded on the way, and a partial character is let
// through only when some transition accepts a code point it can still become. The whole output
// must match (the pattern is anchored at both ends, as vLLM's guided_regex is). The syntax is
// regex-parse.ts's.
import { type ByteAutomaton, cpRange, type Utf8, UTF8_IDLE, utf8Key, utf8Len, utf8Step } from "./automaton.ts";
import { type Ast, Parser, type Ranges } from "./regex-parse.ts";
import { GrammarError } from "./error.ts";

const MAX_STATES = 20000;

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
  private readonly charDist: Float64Array; // the same in characters
  private readonly jsonDist: Float64Array; // the same in bytes of a JSON string (escapes counted)
  private readonly sets: (readonly number[])[] = [];
  private readonly setIds = new Map<string, number>();
  private readonly ascii: Int32Array[] = []; // per set: next set id on each ASCII byte (-1 none, -2 not yet known)
  private readonly wide = new Map<string, number>(); // moves on other code points
  private readonly closeDist: number[] = [];

  constructor(readonly source: string) {
    this.nfa = build(new Parser(source).parse());
    this.dist = distances(this.nfa);
    this.charDist = distances(this.nfa, "chars");
    this.jsonDist = distances(this.nfa, "json");
    this.init = { id: this.intern(this.close([this.nfa.start])), u: UTF8_IDLE };
    if (!Number.isFinite(this.minClose(this.init))) throw new GrammarError(`regex ${JSON.stringify(source)} matches nothing`);
  }

  private intern(set: number[]): number {
    const k = set.join(",");
    let id = this.setIds.get(k);
    if (id === undefined) {
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

  /** Fewest characters that complete a match, after the character in progress (if any). */
  minChars(s: RegexState): number {
    return this.after(s, this.charDist, 0);
  }

  /** Fewest bytes that complete a match written inside a JSON string (escapes cost two). */
  minJson(s: RegexState): number {
    return this.after(s, this.jsonDist, s.u.need);
  }

  private after(s: RegexState, dist: Float64Array, pending: number): number {
    let m = Infinity;
    if (s.u.need === 0) {
      for (const q of this.sets[s.id]) m = Math.min(m, dist[q]);
      return m;
    }
    const [lo, hi] = cpRange(s.u);
    for (const q of this.sets[s.id]) for (const e of this.nfa.edges[q]) if (e.r.some(([a, b]) => a <= hi && b >= lo)) m = Math.min(m, pending + dist[e.to]);
    return m;
  }

  key(s: RegexState): string {
    return `${s.id};${utf8Key(s.u)}`;
  }
}

/** Fewest bytes (or characters, with `chars`) from each state to acceptance (Bellman-Ford over
 * the small NFA). */
function distances(nfa: Nfa, mode: "bytes" | "chars" | "json" = "bytes"): Float64Array {
  const cost = mode === "chars" ? () => 1 : mode === "json" ? jsonCost : (r: Ranges) => utf8Len(r[0][0]);
  const d = new Float64Array(nfa.edges.length).fill(Infinity);
  d[nfa.accept] = 0;
  for (let changed = true; changed;) {
    changed = false;
    for (let s = 0; s < d.length; s++) {
      let m = d[s];
      for (const t of nfa.eps[s]) m = Math.min(m, d[t]);
      for (const e of nfa.edges[s]) m = Math.min(m, cost(e.r) + d[e.to]);
      if (m < d[s]) { d[s] = m; changed = true; }
    }
  }
  return d;
}

/** The fewest bytes a character of these ranges takes inside a JSON string ('"', '\\' and control
 * characters are escaped). */
function jsonCost(r: Ranges): number {
  let best = Infinity;
  for (const [a, b] of r) {
    if (a <= 0x7e && b >= 0x20 && !(a >= 0x22 && b <= 0x22) && !(a >= 0x5c && b <= 0x5c)) return 1;
    best = Math.min(best, a < 0x20 || a === 0x22 || a === 0x5c ? 2 : utf8Len(a));
  }
  return best;
}
