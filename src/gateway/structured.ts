// Structured output: response_format (json_object, json_schema) and vLLM's guided_json,
// guided_regex and guided_choice turned into a grammar (src/grammar) that the engine decodes
// under. Grammars are compiled once per distinct request and kept (their mask caches with them),
// so repeated schemas cost nothing after the first request.
import type { ModelInfo } from "../engine/types.ts";
import {
  compileChoice, compileJsonObject, compileJsonSchema, compileRegex, type Grammar, GrammarError, sharedVocab, type TokenSource,
  type TokenVocab,
} from "../grammar/index.ts";
import type { TextCodec } from "./codec.ts";
import { ApiError } from "./errors.ts";
import type { StructuredFields } from "./schemas.ts";

const GRAMMARS_KEPT = 32; // with their mask caches: at most 32 x 128 x 16 KiB at V = 129280
const grammarsOf = new WeakMap<TokenVocab, Map<string, Grammar>>();

function isTokenSource(c: unknown): c is TokenSource {
  const t = c as Partial<TokenSource>;
  return typeof t.idToToken === "function" && typeof t.vocabSize === "number";
}

/** The vocabulary the masks are made over: the model's size, the tokenizer's bytes (built once
 * per tokenizer and shared with the tool-call constraint), and the grammars compiled over it. */
export function vocabOf(codec: TextCodec, info: ModelInfo): { vocab: TokenVocab; grammars: Map<string, Grammar> } {
  if (!isTokenSource(codec)) throw ApiError.badRequest("Structured output needs the tokenizer's vocabulary, which this server's tokenizer does not expose.", "response_format");
  const vocab = sharedVocab(codec, info.vocab_size, [info.eos_token_id]);
  let grammars = grammarsOf.get(vocab);
  if (!grammars) grammarsOf.set(vocab, (grammars = new Map()));
  return { vocab, grammars };
}

/** What the request asks the output to be, as [param, cache key, compile]; null for free text. */
function requested(b: StructuredFields): [string, string, (v: TokenVocab) => Grammar] | null {
  const rf = b.response_format;
  if (b.guided_json != null) {
    let schema: unknown = b.guided_json;
    if (typeof schema === "string") {
      try {
        schema = JSON.parse(schema);
      } catch (e) {
        throw ApiError.badRequest(`guided_json is not JSON: ${(e as Error).message}`, "guided_json");
      }
    }
    return ["guided_json", `s${JSON.stringify(schema)}`, (v) => compileJsonSchema(schema, v)];
  }
  if (b.guided_regex != null) return ["guided_regex", `r${b.guided_regex}`, (v) => compileRegex(b.guided_regex!, v)];
  if (b.guided_choice != null) return ["guided_choice", `c${JSON.stringify(b.guided_choice)}`, (v) => compileChoice(b.guided_choice!, v)];
  if (!rf || rf.type === "text") return null;
  if (rf.type === "json_object") return ["response_format", "o", (v) => compileJsonObject(v)];
  const schema = rf.json_schema.schema ?? {};
  return ["response_format", `s${JSON.stringify(schema)}`, (v) => compileJsonSchema(schema, v)];
}

/** The grammar the request's output must follow, or undefined. A schema we cannot enforce is a
 * 400 that says which keyword, never an output that might not validate. */
export function structuredConstraint(b: StructuredFields, codec: TextCodec, info: ModelInfo): Grammar | undefined {
  const r = requested(b);
  if (!r) return undefined;
  const [param, key, compile] = r;
  const { vocab, grammars } = vocabOf(codec, info);
  let g = grammars.get(key);
  if (!g) {
    try {
      g = compile(vocab);
    } catch (e) {
      if (e instanceof GrammarError) throw ApiError.badRequest(`${param}: ${e.message}`, param, "invalid_value");
      throw e;
    }
    if (grammars.size >= GRAMMARS_KEPT) grammars.delete(grammars.keys().next().value!);
  }
  grammars.delete(key); // most recently used last
  grammars.set(key, g);
  return g;
}
