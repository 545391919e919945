#!/usr/bin/env bun
// Load generator for any OpenAI-compatible server (ours, vLLM, SGLang). Streaming always.
//   bun scripts/loadgen.ts --base-url http://127.0.0.1:8000 --model NAME [--endpoint completions|chat]
//     [--num-prompts 100] [--concurrency N] [--request-rate R --burstiness B] [--max-seconds S]
//     [--input-len 128 --output-len 128 --range-ratio 0 | --prompts-file F] [--ignore-eos]
//     [--goodput ttft:MS tpot:MS e2el:MS] [--percentiles 50,90,99] [--seed 0] [--api-key K]
//     [--json] [--save-result FILE]
// Arrivals: Poisson at R req/s by default shape (burstiness 1), gamma intervals with shape B and mean
// 1/R otherwise (as vLLM's benchmark_serving); R = inf sends all at once. --concurrency caps requests in
// flight. Results use vLLM's field names. --prompts-file: .jsonl lines {"prompt", "output_len"?} or text,
// one prompt per line.
import { parseArgs } from "node:util";

export interface LoadgenArgs {
  baseUrl: string; model: string; endpoint: "completions" | "chat"; numPrompts: number;
  concurrency: number | null; requestRate: number; burstiness: number; maxSeconds: number | null;
  inputLen: number; outputLen: number; rangeRatio: number; promptsFile: string | null; ignoreEos: boolean;
  goodput: Record<string, number>; percentiles: number[]; seed: number; apiKey: string | null; requestTimeoutS: number;
}

interface Req { prompt: string; outputLen: number }
interface Outcome { ok: boolean; error?: string; ttft: number; itl: number[]; e2el: number; inputTokens: number; outputTokens: number }

export function parseCli(argv: string[]): LoadgenArgs & { json: boolean; saveResult: string | null } {
  // allowPositionals: `--goodput ttft:50 tpot:10` (vLLM's nargs="+") leaves tpot:10 as a positional
  const { values: v, positionals } = parseArgs({ args: argv, strict: true, allowPositionals: true, options: {
    "base-url": { type: "string" }, model: { type: "string" }, endpoint: { type: "string", default: "completions" },
    "num-prompts": { type: "string", default: "100" }, concurrency: { type: "string" }, "max-concurrency": { type: "string" },
    "request-rate": { type: "string", default: "inf" }, burstiness: { type: "string", default: "1" },
    "max-seconds": { type: "string" }, "input-len": { type: "string", default: "128" }, "output-len": { type: "string", default: "128" },
    "range-ratio": { type: "string", default: "0" }, "prompts-file": { type: "string" }, "ignore-eos": { type: "boolean", default: false },
    goodput: { type: "string", multiple: true, default: [] }, percentiles: { type: "string", default: "50,90,99" },
    seed: { type: "string", default: "0" }, "api-key": { type: "string" }, "request-timeout": { type: "string", default: "600" },
    json: { type: "boolean", default: false }, "save-result": { type: "string" },
  } });
  const num = (name: string, s: string | undefined, min: number): number => {
    const x = s === "inf" ? Infinity : Number(s);
    if (!(x >= min)) throw new Error(`--${name} must be a number >= ${min}, got ${s}`);
    return x;
  };
  if (!v["base-url"] || !v.model) throw new Error("--base-url and --model are required");
  if (v.endpoint !== "completions" && v.endpoint !== "chat") throw new Error("--endpoint is completions or chat");
  const goodput: Record<string, number> = {};
  const bad = positionals.find((p) => !/^[a-z0-9]+:/.test(p));
  if (bad !== undefined) throw new Error(`unexpected argument: ${bad}`);
  for (const g of [...v.goodput!, ...positionals].flatMap((s) => s.split(/\s+/)).filter(Boolean)) {
    const [k, ms] = g.split(":");
    if (!["ttft", "tpot", "e2el"].includes(k!)) throw new Error(`--goodput takes ttft:MS tpot:MS e2el:MS, got ${g}`);
    goodput[k!] = num("goodput", ms, 0);
  }
  const conc = v.concurrency ?? v["max-concurrency"];
  return {
    baseUrl: v["base-url"].replace(/\/+$/, "").replace(/\/v1$/, ""), model: v.model, endpoint: v.endpoint,
    numPrompts: num("num-prompts", v["num-prompts"], 1), concurrency: conc ? num("concurrency", conc, 1) : null,
    requestRate: num("request-rate", v["request-rate"], 0), burstiness: num("burstiness", v.burstiness, 1e-6),
    maxSeconds: v["max-seconds"] ? num("max-seconds", v["max-seconds"], 0) : null,
    inputLen: num("input-len", v["input-len"], 1), outputLen: num("output-len", v["output-len"], 1),
    rangeRatio: num("range-ratio", v["range-ratio"], 0), promptsFile: v["prompts-file"] ?? null, ignoreEos: v["ignore-eos"]!,
    goodput, percentiles: v.percentiles!.split(",").map((p) => num("percentiles", p, 0)), seed: num("seed", v.seed, 0),
    apiKey: v["api-key"] ?? process.env.OPENAI_API_KEY ?? null, requestTimeoutS: num("request-timeout", v["request-timeout"], 1),
    json: v.json!, saveResult: v["save-result"] ?? null,
  };
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Gamma(shape, scale) by Marsaglia and Tsang (shape < 1 boosted by U^(1/shape)). */
function gamma(shape: number, scale: number, rand: () => number): number {
  if (shape < 1) return gamma(shape + 1, scale, rand) * Math.pow(rand(), 1 / shape);
  const d = shape - 1 / 3, c = 1 / Math.sqrt(9 * d);
  for (;;) {
    const n = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
    const v = (1 + c * n) ** 3;
    if (v > 0 && Math.log(1 - rand()) < 0.5 * n * n + d - d * v + d * Math.log(v)) return d * v * scale;
  }
}

const WORDS = ("the of and to in is that it for was on are as with his they at be this from have or by one had not but what all were when we there can an your which their said if do will each about how up out them then she many some so these would other into has more her two like him see time could no make than first been its who now people my made over did down only way find use may water long little very after words called just where most know").split(" ");

async function loadRequests(a: LoadgenArgs, rand: () => number): Promise<Req[]> {
  const around = (x: number) => {
    const lo = Math.max(1, Math.floor(x * (1 - a.rangeRatio))), hi = Math.max(lo, Math.ceil(x * (1 + a.rangeRatio)));
    return lo + Math.floor(rand() * (hi - lo + 1));
  };
  if (a.promptsFile) {
    const lines = (await Bun.file(a.promptsFile).text()).split("\n").filter((l) => l.trim());
    const given = lines.map((l): Req => {
      if (!a.promptsFile!.endsWith(".jsonl")) return { prompt: l, outputLen: a.outputLen };
      const o = JSON.parse(l);
      return typeof o === "string" ? { prompt: o, outputLen: a.outputLen } : { prompt: String(o.prompt), outputLen: o.output_len ?? a.outputLen };
    });
    if (given.length === 0) throw new Error(`no prompts in ${a.promptsFile}`);
    return Array.from({ length: a.numPrompts }, (_, i) => given[i % given.length]!);
  }
  return Array.from({ length: a.numPrompts }, () => ({
    prompt: Array.from({ length: around(a.inputLen) }, () => WORDS[Math.floor(rand() * WORDS.length)]).join(" "),
    outputLen: around(a.outputLen),
  }));
}

/** One streaming request; times in ms. Token counts come from the server's usage chunk when it sends one. */
async function sendOne(a: LoadgenArgs, r: Req, signal: AbortSignal): Promise<Outcome> {
  const chat = a.endpoint === "chat";
  const body = {
    model: a.model, stream: true, stream_options: { include_usage: true }, temperature: 0, max_tokens: r.outputLen,
    ...(chat ? { messages: [{ role: "user", content: r.prompt }] } : { prompt: r.prompt }), ...(a.ignoreEos ? { ignore_eos: true } : {}),
  };
  const out: Outcome = { ok: false, ttft: 0, itl: [], e2el: 0, inputTokens: 0, outputTokens: 0 };
  const t0 = performance.now();
  let last = t0, chunks = 0;
  try {
    const res = await fetch(`${a.baseUrl}/v1/${chat ? "chat/completions" : "completions"}`, {
      method: "POST", signal: AbortSignal.any([signal, AbortSignal.timeout(a.requestTimeoutS * 1000)]), body: JSON.stringify(body),
      headers: { "content-type": "application/json", ...(a.apiKey ? { authorization: `Bearer ${a.apiKey}` } : {}) },
    });
    if (!res.ok || !res.body) return { ...out, error: `HTTP ${res.status}: ${(await res.text()).slice(0, 200)}` };
    const decoder = new TextDecoder();
    let buf = "", done = false;
    for await (const bytes of res.body) {
      buf += decoder.decode(bytes, { stream: true });
      let cut: number;
      while ((cut = buf.search(/\r?\n\r?\n/)) >= 0) {
        const event = buf.slice(0, cut);
        buf = buf.slice(cut).replace(/^\r?\n\r?\n/, "");
        const data = event.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("");
        if (!data) continue;
        if (data === "[DONE]") { done = true; continue; }
        const msg = JSON.parse(data);
        if (msg.error) return { ...out, error: `stream error: ${msg.error.message}` };
        if (msg.usage) { out.inputTokens = msg.usage.prompt_tokens; out.outputTokens = msg.usage.completion_tokens; }
        const text = chat ? msg.choices?.[0]?.delta?.content : msg.choices?.[0]?.text;
        if (!text) continue;
        const now = performance.now();
        if (chunks++ === 0) out.ttft = now - t0;
        else out.itl.push(now - last);
        last = now;
      }
    }
    out.e2el = performance.now() - t0;
    if (!done) return { ...out, error: "stream ended without [DONE]" };
    if (!out.outputTokens) out.outputTokens = chunks;
    return { ...out, ok: true };
  } catch (err) {
    return { ...out, error: signal.aborted ? "cut off by --max-seconds" : String((err as Error).message ?? err) };
  }
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const x = (p / 100) * (sorted.length - 1), lo = Math.floor(x), hi = Math.ceil(x);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (x - lo); // numpy's linear interpolation
}

function describe(name: string, xs: number[], ps: number[]): Record<string, number> {
  const s = [...xs].sort((a, b) => a - b), mean = s.length ? s.reduce((a, b) => a + b, 0) / s.length : 0;
  const std = s.length ? Math.sqrt(s.reduce((a, b) => a + (b - mean) ** 2, 0) / s.length) : 0;
  const out: Record<string, number> = { [`mean_${name}_ms`]: mean, [`median_${name}_ms`]: percentile(s, 50), [`std_${name}_ms`]: std };
  for (const p of ps) out[`p${p}_${name}_ms`] = percentile(s, p);
  return out;
}

export async function runBenchmark(a: LoadgenArgs): Promise<Record<string, unknown>> {
  const rand = mulberry32(a.seed);
  const reqs = await loadRequests(a, rand);
  const stop = new AbortController();
  const timer = a.maxSeconds !== null ? setTimeout(() => stop.abort(), a.maxSeconds * 1000) : null;
  let inFlight = 0;
  const slotFreed: (() => void)[] = [];
  stop.signal.addEventListener("abort", () => slotFreed.splice(0).forEach((f) => f()));
  const t0 = performance.now();
  const runs: Promise<Outcome>[] = [];
  for (const r of reqs) {
    if (stop.signal.aborted) break;
    while (a.concurrency !== null && inFlight >= a.concurrency && !stop.signal.aborted) await new Promise<void>((res) => slotFreed.push(res));
    if (stop.signal.aborted) break;
    inFlight++;
    runs.push(sendOne(a, r, stop.signal).finally(() => { inFlight--; slotFreed.shift()?.(); }));
    if (a.requestRate !== Infinity) {
      const wait = gamma(a.burstiness, 1 / (a.requestRate * a.burstiness), rand) * 1000;
      await new Promise<void>((res) => { const t = setTimeout(res, wait); stop.signal.addEventListener("abort", () => { clearTimeout(t); res(); }, { once: true }); });
    }
  }
  const outcomes = await Promise.all(runs);
  if (timer) clearTimeout(timer);
  const duration = (performance.now() - t0) / 1000;
  const ok = outcomes.filter((o) => o.ok);
  const tpots = ok.filter((o) => o.outputTokens > 1).map((o) => (o.e2el - o.ttft) / (o.outputTokens - 1));
  const good = ok.filter((o) => (a.goodput.ttft === undefined || o.ttft <= a.goodput.ttft)
    && (a.goodput.e2el === undefined || o.e2el <= a.goodput.e2el)
    && (a.goodput.tpot === undefined || o.outputTokens <= 1 || (o.e2el - o.ttft) / (o.outputTokens - 1) <= a.goodput.tpot));
  const totalIn = ok.reduce((s, o) => s + o.inputTokens, 0), totalOut = ok.reduce((s, o) => s + o.outputTokens, 0);
  return {
    date: new Date().toISOString(), backend: "openai", endpoint: a.endpoint, model_id: a.model, base_url: a.baseUrl,
    num_prompts: a.numPrompts, request_rate: a.requestRate === Infinity ? "inf" : a.requestRate, burstiness: a.burstiness,
    max_concurrency: a.concurrency, duration, completed: ok.length, failed: outcomes.length - ok.length,
    not_sent: reqs.length - outcomes.length, total_input_tokens: totalIn, total_output_tokens: totalOut,
    request_throughput: ok.length / duration, request_goodput: Object.keys(a.goodput).length ? good.length / duration : null,
    output_throughput: totalOut / duration, total_token_throughput: (totalIn + totalOut) / duration,
    ...describe("ttft", ok.map((o) => o.ttft), a.percentiles), ...describe("tpot", tpots, a.percentiles),
    ...describe("itl", ok.flatMap((o) => o.itl), a.percentiles), ...describe("e2el", ok.map((o) => o.e2el), a.percentiles),
    errors: [...new Set(outcomes.filter((o) => !o.ok).map((o) => o.error!))].slice(0, 10),
  };
}

export function formatTable(r: Record<string, unknown>, ps: number[]): string {
  const row = (k: string, v: unknown) => `${k.padEnd(40)}${typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : String(v)}\n`;
  const bar = (t: string) => `${t.padStart(25 + t.length / 2, "-").padEnd(50, "-")}\n`;
  let s = `${"=".repeat(12)} Serving Benchmark Result ${"=".repeat(12)}\n`;
  s += row("Successful requests:", r.completed) + row("Failed requests:", r.failed) + row("Benchmark duration (s):", r.duration);
  s += row("Total input tokens:", r.total_input_tokens) + row("Total generated tokens:", r.total_output_tokens);
  s += row("Request throughput (req/s):", r.request_throughput);
  if (r.request_goodput !== null) s += row("Request goodput (req/s):", r.request_goodput);
  s += row("Output token throughput (tok/s):", r.output_throughput) + row("Total Token throughput (tok/s):", r.total_token_throughput);
  for (const [m, title] of [["ttft", "Time to First Token"], ["tpot", "Time per Output Token (excl. 1st token)"], ["itl", "Inter-token Latency"], ["e2el", "End-to-end Latency"]]) {
    const M = m!.toUpperCase();
    s += bar(title!) + row(`Mean ${M} (ms):`, r[`mean_${m}_ms`]) + row(`Median ${M} (ms):`, r[`median_${m}_ms`]);
    for (const p of ps) s += row(`P${p} ${M} (ms):`, r[`p${p}_${m}_ms`]);
  }
  return s + "=".repeat(50) + "\n";
}

if (import.meta.main) {
  try {
    const args = parseCli(process.argv.slice(2));
    const result = await runBenchmark(args);
    const table = formatTable(result, args.percentiles);
    if (args.json) { process.stderr.write(table); process.stdout.write(JSON.stringify(result, null, 2) + "\n"); }
    else process.stdout.write(table);
    if (args.saveResult) await Bun.write(args.saveResult, JSON.stringify(result, null, 2) + "\n");
    for (const e of result.errors as string[]) console.error(`error: ${e}`);
  } catch (err) {
    console.error(`loadgen: ${(err as Error).message}`);
    process.exit(2);
  }
}
