// A constraint: a sequence of parts, each either fixed tokens (special tokens, written as
// themselves) or a byte automaton (JSON under a schema, a regex, a choice, a literal text), then
// the end. A Matcher follows one output through it token by token and fills the mask of the next.
import type { ByteAutomaton } from "./automaton.ts";
import { MaskCache, allowed } from "./mask.ts";
import type { TokenVocab } from "./vocab.ts";

export type Part = { kind: "tokens"; ids: readonly number[] } | { kind: "bytes"; auto: ByteAutomaton };

interface At {
  p: number; // part index (parts.length = complete)
  j: number; // tokens part: ids matched
  s: unknown; // bytes part: automaton state
}

export class Grammar {
  readonly cache = new MaskCache();
  private readonly terminal = new Map<string, boolean>();
  constructor(readonly vocab: TokenVocab, readonly parts: readonly Part[], readonly name: string) {}

  /** A matcher at the start of the output. */
  start(): Matcher {
    return new Matcher(this, this.enter(0));
  }

  /** Part p entered at its beginning (empty tokens parts are skipped). */
  enter(p: number): At {
    while (p < this.parts.length) {
      const part = this.parts[p];
      if (part.kind === "bytes") return { p, j: 0, s: part.auto.init };
      if (part.ids.length) return { p, j: 0, s: null };
      p++;
    }
    return { p, j: 0, s: null };
  }

  /** Everything after `at` may be empty: the output could end here. */
  complete(at: At): boolean {
    if (at.p >= this.parts.length) return true;
    const part = this.parts[at.p];
    return part.kind === "bytes" && part.auto.accepting(at.s) && this.enter(at.p + 1).p >= this.parts.length;
  }

  /** Complete, and no byte or token can continue it: only the end may follow. */
  finished(at: At): boolean {
    if (at.p >= this.parts.length) return true;
    if (!this.complete(at)) return false;
    const a = (this.parts[at.p] as Extract<Part, { kind: "bytes" }>).auto, k = a.key(at.s);
    let t = this.terminal.get(k);
    if (t === undefined) {
      t = true;
      for (let b = 0; b < 256 && t; b++) if (a.step(at.s, b) !== null) t = false;
      if (this.terminal.size >= 65536) this.terminal.clear();
      this.terminal.set(k, t);
    }
    return t;
  }

  /** Fewest tokens from `at` to the end of the constraint. */
  minClose(at: At): number {
    let m = 0;
    for (let p = at.p; p < this.parts.length; p++) {
      const part = this.parts[p];
      if (part.kind === "tokens") m += part.ids.length - (p === at.p ? at.j : 0);
      else m += p === at.p ? part.auto.minClose(at.s) : part.auto.minClose(part.auto.init);
    }
    return m;
  }
}

export class Matcher {
  private ended = false;
  constructor(readonly grammar: Grammar, private at: At) {}

  /** Sets in `mask` (ceil(V / 32) words, cleared here) the tokens that can come next. `budget`:
   * tokens left including this one; when given, a token is allowed only if the output can still be
   * completed in what is left after it, so a constraint that fits max_tokens always closes. */
  fill(mask: Uint32Array, budget = Infinity): void {
    mask.fill(0);
    if (this.ended) return;
    const g = this.grammar, at = this.at, room = budget - 1;
    const tail = g.minClose(at) - this.partNeed(); // what the parts after this one cost at least
    const set = (t: number) => { if (t >= 0 && t < g.vocab.size) mask[t >>> 5] |= 1 << (t & 31); };
    if (at.p < g.parts.length) {
      const part = g.parts[at.p];
      if (part.kind === "tokens") {
        if (g.minClose(at) - 1 <= room) set(part.ids[at.j]);
      } else {
        g.cache.fill(part.auto, at.s, g.vocab, room - tail, mask);
        // a complete part may hand over to the fixed tokens after it
        const nx = g.enter(at.p + 1);
        if (part.auto.accepting(at.s) && nx.p < g.parts.length && g.parts[nx.p].kind === "tokens" && g.minClose(nx) - 1 <= room)
          set((g.parts[nx.p] as Extract<Part, { kind: "tokens" }>).ids[0]);
      }
    }
    if (g.complete(at)) for (const e of g.vocab.end) set(e);
  }

  /** Bytes still due in the current part (its share of minClose). */
  private partNeed(): number {
    const g = this.grammar, at = this.at;
    if (at.p >= g.parts.length) return 0;
    const part = g.parts[at.p];
    return part.kind === "tokens" ? part.ids.length - at.j : part.auto.minClose(at.s);
  }

  /** Advances by one generated token; false (and no change) when the grammar does not allow it. */
  accept(token: number): boolean {
    if (this.ended) return false;
    const g = this.grammar;
    if (g.vocab.end.includes(token)) {
      if (!g.complete(this.at)) return false;
      this.ended = true;
      return true;
    }
    const next = this.advance(this.at, token);
    if (!next) return false;
    this.at = next;
    return true;
  }

  private advance(at: At, token: number): At | null {
    const g = this.grammar;
    if (at.p >= g.parts.length) return null;
    const part = g.parts[at.p];
    if (part.kind === "tokens") {
      if (part.ids[at.j] !== token) return null;
      return at.j + 1 < part.ids.length ? { ...at, j: at.j + 1 } : g.enter(at.p + 1);
    }
    const bytes = g.vocab.bytes[token];
    if (bytes) {
      let s: unknown = at.s;
      for (const b of bytes) if ((s = part.auto.step(s, b)) === null) break;
      if (s !== null) return { ...at, s };
    }
    // the start of the fixed tokens after a complete part (a special token, as a rule)
    const nx = g.enter(at.p + 1);
    return part.auto.accepting(at.s) && nx.p < g.parts.length && g.parts[nx.p].kind === "tokens" ? this.advance(nx, token) : null;
  }

  /** The fewest tokens that complete the output from here (with single-byte tokens). */
  remaining(): number {
    return this.ended ? 0 : this.grammar.minClose(this.at);
  }

  /** Nothing but the end can follow (or the end was accepted): the output is complete. */
  done(): boolean {
    return this.ended || this.grammar.finished(this.at);
  }

  /** The output so far is complete (the end would be accepted), though it might go on. */
  complete(): boolean {
    return this.ended || this.grammar.complete(this.at);
  }

  /** Whether `token` is allowed next, without a budget (tests, speculative checks). */
  allows(token: number): boolean {
    const m = new Uint32Array(Math.ceil(this.grammar.vocab.size / 32));
    this.fill(m);
    return allowed(m, token);
  }
}
