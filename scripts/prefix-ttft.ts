// Time to first token with and without automatic prefix caching, on prompts that share their first
// N tokens (a system prompt, a few-shot preamble): the first request fills the cache, the others
// should prefill only their own suffix. Measured on the engine (no HTTP), requests one at a time so
// the figure is the prefill alone; a stand-in for `scripts/loadgen.ts --shared-prefix-len N`.
//   npx bun scripts/prefix-ttft.ts [--model DIR] [--scaling FILE|direct] [--shared-prefix-len N] [--suffix-len N] [--requests N] [--json]
import { createBackend } from "../src/commands/backend.ts";
import { type CommandSpec, parseOrExit } from "../src/commands/spec.ts";
import { ModelEngine } from "../src/engine/engine.ts";
import { seededRandom } from "../src/engine/sequence.ts";
import type { SamplingParams } from "../src/engine/types.ts";

export const PREFIX_TTFT = {
  name: "npx bun scripts/prefix-ttft.ts",
  summary: "TTFT of prompts sharing their first N tokens, with and without prefix caching (engine level, one request at a time).",
  flags: {
    model: { type: "string", arg: "DIR", default: "models/fortune-dsv3", help: "model directory (default models/fortune-dsv3)" },
    scaling: { type: "string", arg: "FILE", default: "direct", help: "scaling config, or direct (default direct)" },
    "shared-prefix-len": { type: "string", arg: "N", default: "512", help: "tokens every prompt shares (default 512)" },
    "suffix-len": { type: "string", arg: "N", default: "32", help: "tokens of each prompt's own (default 32)" },
    requests: { type: "string", arg: "N", default: "8", help: "prompts timed per mode, after one that fills the cache (default 8)" },
    json: { type: "boolean", help: "print one JSON object" },
  },
} as const satisfies CommandSpec;

const greedy1: SamplingParams = {
  temperature: 0, top_p: 1, top_k: 0, min_p: 0, presence_penalty: 0, frequency_penalty: 0, repetition_penalty: 1,
  seed: 0, max_tokens: 1, stop_token_ids: [], ignore_eos: true, logprobs: null, prompt_logprobs: false,
};

async function main(): Promise<void> {
  const a = parseOrExit(process.argv.slice(2), PREFIX_TTFT);
  const shared = Number(a["shared-prefix-len"]), suffix = Number(a["suffix-len"]), count = Number(a.requests);
  const kvTokens = (shared + suffix + 16) * (count + 2);
  const result: Record<string, unknown> = { model: a.model, scaling: a.scaling, shared_prefix_len: shared, suffix_len: suffix, requests: count };
  for (const caching of [false, true]) {
    const backend = await createBackend({ model: a.model!, scaling: a.scaling, kvTokens });
    const engine = new ModelEngine(backend, { prefixCaching: caching, maxBatchTokens: 4096 });
    const r = seededRandom(1), vocab = Math.min(backend.config.vocab_size, 4000);
    const tok = () => 3 + Math.floor(r() * (vocab - 3));
    const head = [backend.config.bos_token_id ?? 0, ...Array.from({ length: shared - 1 }, tok)];
    const prompt = () => [...head, ...Array.from({ length: suffix }, tok)];
    const ttft = async (ids: number[]) => {
      const t0 = performance.now();
      let first = 0;
      for await (const ev of engine.generate({ id: `t${performance.now()}`, prompt_ids: ids, params: greedy1 })) {
        if (ev.type === "token" && !first) first = performance.now() - t0;
        if (ev.type === "done" && ev.finish_reason === "error") throw new Error(ev.error);
      }
      return first;
    };
    await ttft(Array.from({ length: 8 }, tok)); // activation, kernels warm
    const fill = await ttft(prompt()); // fills the cache when caching
    const ms: number[] = [];
    for (let i = 0; i < count; i++) ms.push(await ttft(prompt()));
    ms.sort((x, y) => x - y);
    const s = engine.stats();
    result[caching ? "caching" : "no_caching"] = {
      first_ms: fill, mean_ms: ms.reduce((x, y) => x + y, 0) / ms.length, p50_ms: ms[ms.length >> 1], max_ms: ms.at(-1),
      ...(caching ? { prefix_cache_hit_rate: (s.prefix_cache_hits_total ?? 0) / Math.max(1, s.prefix_cache_queries_total ?? 0) } : {}),
    };
    await engine.close();
  }
  if (a.json) console.log(JSON.stringify(result));
  else {
    console.log(`TTFT, ${count} prompts of ${shared} shared + ${suffix} own tokens (${a.model}, ${a.scaling})`);
    for (const mode of ["no_caching", "caching"]) {
      const m = result[mode] as Record<string, number>;
      console.log(`${mode.padEnd(11)} first ${m.first_ms.toFixed(1)} ms   then mean ${m.mean_ms.toFixed(1)} ms, p50 ${m.p50_ms.toFixed(1)} ms, max ${m.max_ms.toFixed(1)} ms` +
        (m.prefix_cache_hit_rate !== undefined ? `   hit rate ${(100 * m.prefix_cache_hit_rate).toFixed(1)}%` : ""));
    }
    console.log(JSON.stringify(result));
  }
  process.exit(0);
}

if (import.meta.main) await main();
