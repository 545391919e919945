// tool_choice "required" or a named function: the output is constrained (src/grammar) to be one tool
// call in DeepSeek-V3's format, the markers as their own tokens and the arguments JSON that validates
// against the function's parameters, so it is a valid call whatever the weights:
//   <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\n{...}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>
// With "required" and several tools, NAME and its arguments are one of the tools' (a union). Under
// --tool-call-parser deepseek_v31 the call is spelled as V3.1 writes it: NAME<｜tool▁sep｜>{...}.
import type { ByteAutomaton } from "../grammar/automaton.ts";
import { type Grammar, GrammarError, jsonSchemaPiece, literalText, literalTokens, type Piece, sequence, type TokenVocab } from "../grammar/index.ts";
import { LiteralChoice } from "../grammar/literal.ts";
import type { ModelInfo } from "../engine/types.ts";
import type { TextCodec } from "./codec.ts";
import { ApiError } from "./errors.ts";
import { vocabOf } from "./structured.ts";
import type { FunctionTool, ToolChoice } from "./schemas.ts";
import { CALL_BEGIN, CALL_END, CALLS_BEGIN, CALLS_END, SEP } from "./tools.ts";

/** The vocabulary the masks are made over, shared with structured output (built once per tokenizer). */
function constraintVocab(codec: TextCodec, info: ModelInfo): TokenVocab {
  return vocabOf(codec, info).vocab;
}

/** Byte automata one after another (first fit: a byte goes to the current one while it can take it). */
class Chain implements ByteAutomaton<{ i: number; s: unknown }> {
  readonly init: { i: number; s: unknown };
  constructor(private readonly parts: readonly ByteAutomaton[]) {
    this.init = { i: 0, s: parts[0]!.init };
  }
  step(st: { i: number; s: unknown }, b: number): { i: number; s: unknown } | null {
    const s = this.parts[st.i]!.step(st.s, b);
    if (s !== null) return { i: st.i, s };
    if (st.i + 1 < this.parts.length && this.parts[st.i]!.accepting(st.s)) return this.step({ i: st.i + 1, s: this.parts[st.i + 1]!.init }, b);
    return null;
  }
  accepting(st: { i: number; s: unknown }): boolean {
    if (!this.parts[st.i]!.accepting(st.s)) return false;
    return st.i + 1 >= this.parts.length || this.accepting({ i: st.i + 1, s: this.parts[st.i + 1]!.init });
  }
  minClose(st: { i: number; s: unknown }): number {
    let m = this.parts[st.i]!.minClose(st.s);
    for (let i = st.i + 1; i < this.parts.length; i++) m += this.parts[i]!.minClose(this.parts[i]!.init);
    return m;
  }
  key(st: { i: number; s: unknown }): string {
    return `${st.i}/${this.parts[st.i]!.key(st.s)}`;
  }
}

/** Any one of several automata: every branch still alive steps along. */
class OneOf implements ByteAutomaton<readonly (readonly [number, unknown])[]> {
  readonly init: readonly (readonly [number, unknown])[];
  constructor(private readonly branches: readonly ByteAutomaton[]) {
    this.init = branches.map((b, i) => [i, b.init] as const);
  }
  step(live: readonly (readonly [number, unknown])[], byte: number) {
    const next = live.flatMap(([i, s]) => {
      const t = this.branches[i]!.step(s, byte);
      return t === null ? [] : [[i, t] as const];
    });
    return next.length ? next : null;
  }
  accepting(live: readonly (readonly [number, unknown])[]): boolean {
    return live.some(([i, s]) => this.branches[i]!.accepting(s));
  }
  minClose(live: readonly (readonly [number, unknown])[]): number {
    return Math.min(...live.map(([i, s]) => this.branches[i]!.minClose(s)));
  }
  key(live: readonly (readonly [number, unknown])[]): string {
    return live.map(([i, s]) => `${i}:${this.branches[i]!.key(s)}`).join("|");
  }
}

/** One marker as token ids (a single added token in DeepSeek's tokenizers). */
function marker(codec: TextCodec, text: string): Piece {
  return literalTokens(codec.encode(text, { addSpecialTokens: false }));
}

/** The arguments: JSON under the function's parameters (a schema we cannot enforce is a 400). */
function argsPiece(tool: FunctionTool, index: number): Piece & { auto: ByteAutomaton } {
  try {
    return jsonSchemaPiece(tool.function.parameters ?? { type: "object", properties: {} }) as Piece & { auto: ByteAutomaton };
  } catch (err) {
    if (!(err instanceof GrammarError)) throw err;
    throw ApiError.badRequest(`tools[${index}].function.parameters cannot be enforced: ${err.message}`, "tools", "invalid_value");
  }
}

/** V3's NAME, its arguments and the closing fence, as one automaton (so several tools make a union). */
function v3Body(tool: FunctionTool, index: number): ByteAutomaton {
  const lit = (s: string) => LiteralChoice.ofText([s]);
  return new Chain([lit(`${tool.function.name}\n\`\`\`json\n`), argsPiece(tool, index).auto, lit("\n```")]);
}

/** How the model spells a call: V3's (`function<｜tool▁sep｜>NAME` and a ```json fence) or V3.1's
 * (`NAME<｜tool▁sep｜>ARGS`). */
export type CallSpelling = "v3" | "v31";

function callPieces(chosen: readonly FunctionTool[], tools: readonly FunctionTool[], codec: TextCodec, spelling: CallSpelling): Piece[] {
  if (spelling === "v31") {
    // the name and the arguments sit on either side of a token: a union of tools cannot span it
    if (chosen.length !== 1) {
      throw ApiError.badRequest("With the deepseek_v31 tool-call parser, tool_choice \"required\" needs a single tool; name the function instead.",
        "tool_choice", "unsupported_parameter");
    }
    return [literalText(chosen[0]!.function.name), marker(codec, SEP), argsPiece(chosen[0]!, tools.indexOf(chosen[0]!))];
  }
  const bodies = chosen.map((t) => v3Body(t, tools.indexOf(t)));
  return [literalText("function"), marker(codec, SEP), { auto: bodies.length === 1 ? bodies[0]! : new OneOf(bodies), name: "tool_call" }];
}

// masks are cached per grammar: the same tools (on the same vocabulary) reuse theirs
const compiled = new WeakMap<TokenVocab, Map<string, Grammar>>();
const MAX_COMPILED = 64;

/** The constraint for tool_choice "required" or a named function (null for auto/none). */
export function toolCallConstraint(
  tools: readonly FunctionTool[], choice: ToolChoice | null | undefined, codec: TextCodec, info: ModelInfo, spelling: CallSpelling = "v3",
): Grammar | null {
  if (choice !== "required" && (typeof choice !== "object" || choice === null)) return null;
  const chosen = typeof choice === "object" ? tools.filter((t) => t.function.name === choice.function.name) : tools;
  const vocab = constraintVocab(codec, info);
  const mine = compiled.get(vocab) ?? new Map<string, Grammar>();
  compiled.set(vocab, mine);
  const key = `${spelling}${JSON.stringify(chosen)}`;
  let g = mine.get(key);
  if (!g) {
    g = sequence([
      marker(codec, CALLS_BEGIN), marker(codec, CALL_BEGIN), ...callPieces(chosen, tools, codec, spelling),
      marker(codec, CALL_END), marker(codec, CALLS_END),
    ], vocab);
    if (mine.size >= MAX_COMPILED) mine.delete(mine.keys().next().value!);
    mine.set(key, g);
  }
  return g;
}
