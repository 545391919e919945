// Grammar-constrained decoding: compile a constraint (a JSON Schema, any JSON object, a regex, a
// choice, or a sequence of fixed tokens, texts and grammars) against the vocabulary once; each
// sequence then follows it with a Matcher that fills the allowed-token mask before every sample
// and accepts the sampled token after.
//
//   const g = compileJsonSchema(schema, vocab);      // or compileRegex / compileChoice / sequence
//   const m = g.start();
//   m.fill(mask, budget);  // Uint32Array(ceil(V / 32)): allowed tokens (budget = tokens left)
//   m.accept(token);       // false when not allowed
//   m.done();              // complete and nothing but the end can follow
import type { ByteAutomaton } from "./automaton.ts";
import { Grammar, type Part } from "./grammar.ts";
import { JsonAutomaton } from "./json.ts";
import { LiteralChoice } from "./literal.ts";
import { RegexAutomaton } from "./regex.ts";
import { anyNode, compileSchema, GrammarError, type Node } from "./schema.ts";
import type { TokenVocab } from "./vocab.ts";

export { Grammar, Matcher } from "./grammar.ts";
export { GrammarError } from "./schema.ts";
export { allowed, maskWords } from "./mask.ts";
export { makeVocab, sharedVocab, vocabFromTokenizer, type TokenVocab, type TokenSource } from "./vocab.ts";

/** One piece of a sequence: fixed token ids, a fixed text, or a byte automaton. */
export type Piece = { tokens: readonly number[] } | { text: string } | { auto: ByteAutomaton; name: string };

export function literalTokens(ids: readonly number[]): Piece {
  return { tokens: ids };
}
export function literalText(text: string): Piece {
  return { text };
}

/** JSON that validates against `schema` (GrammarError names what cannot be enforced). */
export function jsonSchemaPiece(schema: unknown): Piece {
  return { auto: new JsonAutomaton(compileSchema(schema)), name: "json_schema" };
}
/** Any JSON object (response_format json_object). */
export function jsonObjectPiece(): Piece {
  const obj: Node = { t: "obj", props: [], free: anyNode(), minLen: 2 };
  return { auto: new JsonAutomaton(obj), name: "json_object" };
}
export function regexPiece(re: string): Piece {
  return { auto: new RegexAutomaton(re), name: "regex" };
}
export function choicePiece(options: readonly string[]): Piece {
  if (options.length === 0 || options.some((o) => typeof o !== "string" || o.length === 0))
    throw new GrammarError("guided_choice needs a non-empty list of non-empty strings");
  return { auto: LiteralChoice.ofText(options), name: "choice" };
}

export function compileJsonSchema(schema: unknown, vocab: TokenVocab): Grammar {
  return sequence([jsonSchemaPiece(schema)], vocab);
}
export function compileJsonObject(vocab: TokenVocab): Grammar {
  return sequence([jsonObjectPiece()], vocab);
}
export function compileRegex(re: string, vocab: TokenVocab): Grammar {
  return sequence([regexPiece(re)], vocab);
}
export function compileChoice(options: readonly string[], vocab: TokenVocab): Grammar {
  return sequence([choicePiece(options)], vocab);
}

/** The pieces one after another (e.g. a tool call's special tokens, its name, then JSON
 * arguments), then the end. Neighbouring byte pieces are joined into one automaton. */
export function sequence(pieces: readonly Piece[], vocab: TokenVocab): Grammar {
  const parts: Part[] = [];
  let run: ByteAutomaton[] = [];
  const flush = () => {
    if (run.length) parts.push({ kind: "bytes", auto: run.length === 1 ? run[0] : new Concat(run) });
    run = [];
  };
  for (const p of pieces) {
    if ("tokens" in p) {
      flush();
      parts.push({ kind: "tokens", ids: [...p.tokens] });
    } else run.push("text" in p ? LiteralChoice.ofText([p.text]) : p.auto);
  }
  flush();
  const name = pieces.map((p) => ("tokens" in p ? "tokens" : "text" in p ? "text" : p.name)).join("+");
  return new Grammar(vocab, parts, name);
}

/** Byte automata one after another: a byte goes to the current one, or, when it is complete and
 * cannot take the byte, to the next (a first-fit split, which every accepted output satisfies). */
class Concat implements ByteAutomaton<{ i: number; s: unknown }> {
  readonly init: { i: number; s: unknown };
  constructor(readonly parts: readonly ByteAutomaton[]) {
    this.init = { i: 0, s: parts[0].init };
  }
  step(st: { i: number; s: unknown }, b: number): { i: number; s: unknown } | null {
    const s = this.parts[st.i].step(st.s, b);
    if (s !== null) return { i: st.i, s };
    if (st.i + 1 < this.parts.length && this.parts[st.i].accepting(st.s))
      return this.step({ i: st.i + 1, s: this.parts[st.i + 1].init }, b);
    return null;
  }
  accepting(st: { i: number; s: unknown }): boolean {
    if (!this.parts[st.i].accepting(st.s)) return false;
    return st.i + 1 >= this.parts.length || this.accepting({ i: st.i + 1, s: this.parts[st.i + 1].init });
  }
  minClose(st: { i: number; s: unknown }): number {
    let m = this.parts[st.i].minClose(st.s);
    for (let i = st.i + 1; i < this.parts.length; i++) m += this.parts[i].minClose(this.parts[i].init);
    return m;
  }
  key(st: { i: number; s: unknown }): string {
    return `${st.i}/${this.parts[st.i].key(st.s)}`;
  }
}
