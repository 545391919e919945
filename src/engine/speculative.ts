// Measuring MTP speculative decoding: greedy decode of one prompt with and without speculation on
// the same backend, the acceptance (accepted draft tokens / drafted tokens) and decode speeds.
import { ModelEngine } from "./engine.ts";
import type { ModelBackend } from "./backend.ts";
import type { SamplingParams } from "./types.ts";
import { loadTokenizer } from "../tokenizer/index.ts";

export interface SpeculativeMeasure {
  k: number;
  tokens: number; // generated per run
  mtp_acceptance: number; // accepted / drafted
  mean_accepted_length: number; // tokens emitted per speculative verify step (accepted + 1)
  decode_tok_s: number; // with speculation
  decode_tok_s_no_speculation: number;
  identical: boolean; // greedy outputs agree
}

export interface SpeculativeOptions {
  k?: number;
  tokens?: number;
  prompt?: number[] | string; // token ids or text (default: a short English prompt)
  /** Builds the backend (with its MTP layer) for a KV cache of `kvTokens` tokens (the caller
   * composes it: e.g. src/commands/backend.ts's createBackend with `mtp: true`). */
  backend: (kvTokens: number) => Promise<ModelBackend>;
  repeats?: number; // timed runs per mode, interleaved (best is kept; default 15, as a shared machine is noisy)
}

const greedy = (max: number): SamplingParams => ({
  temperature: 0, top_p: 1, top_k: 0, min_p: 0, presence_penalty: 0, frequency_penalty: 0, repetition_penalty: 1,
  seed: 0, max_tokens: max, stop_token_ids: [], ignore_eos: true, logprobs: null, prompt_logprobs: false,
});

/** Decodes `tokens` tokens after `prompt`; tok/s counts decode only (from the first token on). */
async function decode(engine: ModelEngine, prompt: number[], tokens: number): Promise<{ ids: number[]; tok_s: number }> {
  const ids: number[] = [];
  let t0 = 0;
  for await (const ev of engine.generate({ id: `m${Math.random()}`, prompt_ids: prompt, params: greedy(tokens) })) {
    if (ev.type === "token") {
      if (ids.length === 0) t0 = performance.now();
      ids.push(ev.id);
    } else if (ev.type === "done" && ev.finish_reason === "error") throw new Error(ev.error);
  }
  const dt = (performance.now() - t0) / 1000;
  return { ids, tok_s: ids.length > 1 ? (ids.length - 1) / dt : 0 };
}

export async function measureSpeculative(modelDir: string, o: SpeculativeOptions): Promise<SpeculativeMeasure> {
  const k = o.k ?? 1, tokens = o.tokens ?? 128, repeats = o.repeats ?? 15;
  const text = typeof o.prompt === "string" ? o.prompt : o.prompt ? null : "The fortune teller said";
  const prompt = text === null ? (o.prompt as number[]) : (await loadTokenizer(modelDir)).encode(text, { addSpecialTokens: true });
  const backend = await o.backend(prompt.length + tokens + 64);
  const plain = new ModelEngine(backend);
  const spec = new ModelEngine(backend, { speculative: { k } });
  try {
    await decode(plain, prompt, 8); // warm up
    await decode(spec, prompt, 8);
    let base = { ids: [] as number[], tok_s: 0 }, fast = { ids: [] as number[], tok_s: 0 };
    const s0 = spec.stats();
    const d0 = s0.spec_drafted_total ?? 0, a0 = s0.spec_accepted_total ?? 0;
    let steps = 0;
    for (let r = 0; r < repeats; r++) {
      const b = await decode(plain, prompt, tokens);
      if (b.tok_s > base.tok_s) base = b;
      const f = await decode(spec, prompt, tokens);
      if (f.tok_s > fast.tok_s) fast = f;
    }
    const s1 = spec.stats();
    const drafted = (s1.spec_drafted_total ?? 0) - d0, accepted = (s1.spec_accepted_total ?? 0) - a0;
    steps = drafted / Math.max(1, k); // verify steps with a full draft (approximately all of them)
    return {
      k, tokens,
      mtp_acceptance: drafted ? accepted / drafted : 0,
      mean_accepted_length: steps ? 1 + accepted / steps : 1,
      decode_tok_s: fast.tok_s,
      decode_tok_s_no_speculation: base.tok_s,
      identical: base.ids.length === fast.ids.length && base.ids.every((x, i) => x === fast.ids[i]),
    };
  } finally {
    await spec.close();
    await plain.close().catch(() => {});
  }
}
