// A choice among fixed byte strings (guided_choice, enum, const, true/false/null, object keys):
// the state is how many bytes matched and which options still agree.
import type { ByteAutomaton } from "./automaton.ts";

export interface LitState {
  n: number; // bytes matched
  c: readonly number[]; // options still matching, by index
}

export class LiteralChoice implements ByteAutomaton<LitState> {
  readonly init: LitState;
  readonly minLen: number;
  constructor(readonly options: readonly Uint8Array[]) {
    if (options.length === 0) throw new Error("a choice needs at least one option");
    this.init = { n: 0, c: options.map((_, i) => i) };
    this.minLen = Math.min(...options.map((o) => o.length));
  }

  static ofText(texts: readonly string[]): LiteralChoice {
    return new LiteralChoice(texts.map((t) => new TextEncoder().encode(t)));
  }

  step(s: LitState, b: number): LitState | null {
    const c = s.c.filter((i) => this.options[i].length > s.n && this.options[i][s.n] === b);
    return c.length ? { n: s.n + 1, c } : null;
  }
  accepting(s: LitState): boolean {
    return s.c.some((i) => this.options[i].length === s.n);
  }
  /** The option that completed, when exactly one did. */
  completed(s: LitState): number {
    return s.c.find((i) => this.options[i].length === s.n) ?? -1;
  }
  minClose(s: LitState): number {
    let m = Infinity;
    for (const i of s.c) m = Math.min(m, this.options[i].length - s.n);
    return m;
  }
  key(s: LitState): string {
    return `${s.n}:${s.c.join(",")}`;
  }
}
