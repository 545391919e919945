// The tokenizer metadata llama.cpp reads (tokenizer.ggml.*), from a Hugging Face byte-level BPE
// tokenizer.json + tokenizer_config.json, as convert_hf_to_gguf.py's _set_vocab_gpt2 writes it:
// one token per id up to vocab_size ("[PADi]" UNUSED where the tokenizer has none), token types
// (NORMAL, CONTROL for special added tokens, USER_DEFINED for the others), merges "a b", specials.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { GgufWriter } from "./format.ts";

const TYPE = { NORMAL: 1, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5 } as const;

// DeepSeek-V3's pre-tokenizer splits (llama.cpp's pre-tokenizer "deepseek-v3").
const DEEPSEEK_V3_SPLITS = [
  "\\p{N}{1,3}",
  "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
  "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
];

interface AddedToken { id: number; content: string; special: boolean }
interface TokenizerJson {
  model: { type: string; vocab: Record<string, number>; merges: (string | [string, string])[] };
  added_tokens?: AddedToken[];
  pre_tokenizer?: { type: string; pretokenizers?: { type: string; pattern?: { Regex?: string } }[] };
}

/** llama.cpp's name for the pre-tokenizer, or an error naming what was found. */
function preTokenizer(t: TokenizerJson): string {
  const splits = (t.pre_tokenizer?.pretokenizers ?? []).filter((p) => p.type === "Split").map((p) => p.pattern?.Regex);
  if (JSON.stringify(splits) === JSON.stringify(DEEPSEEK_V3_SPLITS)) return "deepseek-v3";
  throw new Error(`tokenizer.json: unknown pre-tokenizer ${JSON.stringify(splits).slice(0, 200)}; pass --pre NAME (a llama.cpp tokenizer.ggml.pre)`);
}

const looksSpecial = (s: string) => (s.startsWith("<|") && s.endsWith("|>")) || (s.startsWith("<\uff5c") && s.endsWith("\uff5c>"));

function specialContent(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as { content?: unknown }).content === "string") return (v as { content: string }).content;
  return undefined;
}

/** Writes tokenizer.ggml.* and tokenizer.chat_template for the tokenizer in `dir`. */
export function writeVocab(g: GgufWriter, dir: string, vocabSize: number, pre?: string): void {
  const t = JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8")) as TokenizerJson;
  if (t.model.type !== "BPE") throw new Error(`tokenizer.json: model type ${t.model.type}, only byte-level BPE is supported`);
  const cfgPath = join(dir, "tokenizer_config.json");
  const cfg = existsSync(cfgPath) ? (JSON.parse(readFileSync(cfgPath, "utf8")) as Record<string, unknown>) : {};

  const tokens: string[] = Array.from({ length: vocabSize }, (_, i) => `[PAD${i}]`);
  const types: number[] = new Array(vocabSize).fill(TYPE.UNUSED);
  for (const [s, id] of Object.entries(t.model.vocab)) {
    if (id >= vocabSize) throw new Error(`tokenizer.json: token id ${id} is outside vocab_size ${vocabSize}`);
    tokens[id] = s;
    types[id] = TYPE.NORMAL;
  }
  const ids = new Map<string, number>(Object.entries(t.model.vocab));
  for (const a of t.added_tokens ?? []) {
    if (a.id >= vocabSize) throw new Error(`tokenizer.json: added token id ${a.id} is outside vocab_size ${vocabSize}`);
    tokens[a.id] = a.content;
    types[a.id] = a.special || looksSpecial(a.content) ? TYPE.CONTROL : TYPE.USER_DEFINED;
    ids.set(a.content, a.id);
  }

  g.str("tokenizer.ggml.model", "gpt2");
  g.str("tokenizer.ggml.pre", pre ?? preTokenizer(t));
  g.strs("tokenizer.ggml.tokens", tokens);
  g.i32s("tokenizer.ggml.token_type", types);
  g.strs("tokenizer.ggml.merges", t.model.merges.map((m) => (typeof m === "string" ? m : m.join(" "))));
  const special = (key: string, ggufKey: string) => {
    const content = specialContent(cfg[key]);
    const id = content === undefined ? undefined : ids.get(content);
    if (id !== undefined) g.u32(`tokenizer.ggml.${ggufKey}`, id);
  };
  special("bos_token", "bos_token_id");
  special("eos_token", "eos_token_id");
  special("pad_token", "padding_token_id");
  if (typeof cfg.add_bos_token === "boolean") g.bool("tokenizer.ggml.add_bos_token", cfg.add_bos_token);
  if (typeof cfg.add_eos_token === "boolean") g.bool("tokenizer.ggml.add_eos_token", cfg.add_eos_token);
  if (typeof cfg.chat_template === "string") g.str("tokenizer.chat_template", cfg.chat_template);
}
