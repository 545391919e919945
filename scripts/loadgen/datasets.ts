// The prompts a benchmark sends, as vLLM's benchmark_serving makes them, with every input length
// counted in tokens by the model's tokenizer:
//   random   prompts of random token ids decoded to text, re-encoded and trimmed or grown until the
//            text is the asked number of tokens (--random-input-len, --random-range-ratio); an
//            optional shared prefix (--shared-prefix-len, vLLM's --random-prefix-len) starts them all
//   sharegpt a ShareGPT JSON file: conversations[0] (the human turn) is the prompt, the length of
//            conversations[1] (the model's answer) in tokens is the output length
//   custom   our --prompts-file: .jsonl lines {"prompt", "output_len"?}, or text, one prompt a line
import type { Tokenizer } from "../../src/tokenizer/index.ts";

export interface BenchRequest {
  prompt: string;
  promptLen: number; // tokens, as this tokenizer counts the prompt (no BOS)
  outputLen: number;
}

export type Rand = () => number;

export function mulberry32(seed: number): Rand {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [floor(x(1-r)), ceil(x(1+r))], at least 1 (vLLM's range ratio). */
export function around(x: number, ratio: number, rand: Rand): number {
  const lo = Math.max(1, Math.floor(x * (1 - ratio))), hi = Math.max(lo, Math.ceil(x * (1 + ratio)));
  return lo + Math.floor(rand() * (hi - lo + 1));
}

/** Ids a random prompt may use: ordinary tokens (special ones would decode to markers such as BOS
 * that the server treats as structure; vLLM excludes them too) that are text on their own (a lone
 * byte of a multi-byte character decodes to U+FFFD and re-encodes as other tokens). */
function ordinaryIds(tok: Tokenizer): number[] {
  const ids: number[] = [];
  for (let id = 0; id < tok.vocabSize; id++) {
    if (tok.idToToken(id) === undefined || tok.isSpecial(id)) continue;
    const text = tok.decode([id]);
    if (text && !text.includes("\uFFFD")) ids.push(id);
  }
  return ids;
}

/** A text of exactly `len` tokens (when the tokenizer allows; else the nearest it settles on) made
 * from random ids: decode, re-encode (merges change the count), trim or grow, and again. */
function textOfTokens(tok: Tokenizer, len: number, pool: number[], rand: Rand): { text: string; ids: number[] } {
  const pick = () => pool[Math.floor(rand() * pool.length)]!;
  let ids = Array.from({ length: len }, pick);
  let text = tok.decode(ids);
  for (let i = 0; i < 16; i++) {
    ids = tok.encode(text, { addSpecialTokens: false });
    if (ids.length === len) break;
    ids = ids.length > len ? ids.slice(0, len) : [...ids, ...Array.from({ length: len - ids.length }, pick)];
    text = tok.decode(ids);
  }
  return { text, ids: tok.encode(text, { addSpecialTokens: false }) };
}

export interface RandomSpec {
  numPrompts: number;
  inputLen: number;
  outputLen: number;
  rangeRatio: number;
  prefixLen: number; // tokens every prompt starts with (0: none)
}

export function randomRequests(tok: Tokenizer, s: RandomSpec, rand: Rand): BenchRequest[] {
  const pool = ordinaryIds(tok);
  if (pool.length === 0) throw new Error("the tokenizer has no ordinary tokens to make random prompts of");
  const prefix = s.prefixLen > 0 ? textOfTokens(tok, s.prefixLen, pool, rand) : { text: "", ids: [] };
  return Array.from({ length: s.numPrompts }, () => {
    const len = around(s.inputLen, s.rangeRatio, rand);
    let prompt = "", ids: number[] = [];
    // a prompt's own part may merge with the prefix where they meet: draw it again until the server's
    // tokenizer sees the prefix's very tokens (so its KV pages can be shared) and the asked length
    for (let attempt = 0; attempt < 8; attempt++) {
      prompt = prefix.text + textOfTokens(tok, len, pool, rand).text;
      ids = tok.encode(prompt, { addSpecialTokens: false });
      if (ids.length === prefix.ids.length + len && prefix.ids.every((id, i) => ids[i] === id)) break;
    }
    return { prompt, promptLen: ids.length, outputLen: around(s.outputLen, s.rangeRatio, rand) };
  });
}

interface ShareGptTurn { from?: string; value?: string }

/** vLLM's sample_sharegpt_requests: shuffled with the seed, first two turns of each conversation,
 * too-short (< 4 tokens) and too-long (prompt > 1024, prompt + output > 2048) pairs skipped unless
 * the output length is fixed; cycles when the file has fewer usable conversations than asked for. */
export async function sharegptRequests(tok: Tokenizer, path: string, numPrompts: number, fixedOutputLen: number | null,
                                       rand: Rand): Promise<BenchRequest[]> {
  let data: unknown;
  try {
    data = JSON.parse(await Bun.file(path).text());
  } catch (e) {
    throw new Error(`--dataset-path ${path}: not a ShareGPT JSON file (${(e as Error).message})`);
  }
  if (!Array.isArray(data)) throw new Error(`--dataset-path ${path}: expected a JSON array of {"conversations": [...]}`);
  const convs = data.map((d) => (d as { conversations?: ShareGptTurn[] })?.conversations)
    .filter((c): c is ShareGptTurn[] => Array.isArray(c) && c.length >= 2 && typeof c[0]?.value === "string" && typeof c[1]?.value === "string");
  for (let i = convs.length - 1; i > 0; i--) { // Fisher-Yates with the seeded generator
    const j = Math.floor(rand() * (i + 1));
    [convs[i], convs[j]] = [convs[j]!, convs[i]!];
  }
  const out: BenchRequest[] = [];
  for (const c of convs) {
    if (out.length === numPrompts) break;
    const prompt = c[0]!.value!;
    const promptLen = tok.encode(prompt, { addSpecialTokens: false }).length;
    const outputLen = fixedOutputLen ?? tok.encode(c[1]!.value!, { addSpecialTokens: false }).length;
    if (fixedOutputLen === null && (promptLen < 4 || outputLen < 4 || promptLen > 1024 || promptLen + outputLen > 2048)) continue;
    out.push({ prompt, promptLen, outputLen });
  }
  if (out.length === 0) throw new Error(`--dataset-path ${path}: no usable conversation (two turns, each at least 4 tokens)`);
  return Array.from({ length: numPrompts }, (_, i) => out[i % out.length]!);
}

/** --prompts-file: .jsonl lines {"prompt", "output_len"?} (or JSON strings), other files one prompt a line. */
export async function fileRequests(tok: Tokenizer, path: string, numPrompts: number, outputLen: number): Promise<BenchRequest[]> {
  const lines = (await Bun.file(path).text()).split("\n").filter((l) => l.trim());
  const given = lines.map((l) => {
    if (!path.endsWith(".jsonl")) return { prompt: l, outputLen };
    const o = JSON.parse(l);
    return typeof o === "string" ? { prompt: o, outputLen } : { prompt: String(o.prompt), outputLen: Number(o.output_len ?? outputLen) };
  });
  if (given.length === 0) throw new Error(`no prompts in ${path}`);
  return Array.from({ length: numPrompts }, (_, i) => {
    const g = given[i % given.length]!;
    return { ...g, promptLen: tok.encode(g.prompt, { addSpecialTokens: false }).length };
  });
}
