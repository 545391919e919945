// The autoscaler's load step: none -> N concurrent greedy streams for a while -> none, against a
// scaling config with autoscale (default configs/scaling/autoscale.yaml). Prints the timeline:
// hosts per autoscaled kind over time (from the runtime's scaled events), TTFT and failures per
// phase, and how long after the load ended each kind was back at min_replicas.
//   npx bun scripts/bench-autoscale.ts [--model DIR] [--scaling FILE] [--streams N] [--load-s S] [--tokens N] [--json]
import { startActorBackend } from "../src/commands/backend.ts";
import { type CommandSpec, parseOrExit } from "../src/commands/spec.ts";
import { ModelEngine } from "../src/engine/engine.ts";
import type { SamplingParams } from "../src/engine/types.ts";

export const BENCH_AUTOSCALE = {
  name: "npx bun scripts/bench-autoscale.ts",
  summary: "A load step (none -> N streams -> none) against an autoscaled config: hosts over time, TTFT, failures, time back to min_replicas.",
  flags: {
    model: { type: "string", arg: "DIR", default: "models/fortune-dsv3", help: "model directory (default models/fortune-dsv3)" },
    scaling: { type: "string", arg: "FILE", default: "configs/scaling/autoscale.yaml", help: "scaling config with autoscale (default configs/scaling/autoscale.yaml)" },
    streams: { type: "string", arg: "N", default: "16", help: "concurrent streams during the load (default 16)" },
    "load-s": { type: "string", arg: "S", default: "20", help: "seconds of load (default 20)" },
    tokens: { type: "string", arg: "N", default: "32", help: "tokens generated per stream (default 32)" },
    json: { type: "boolean", help: "print one JSON object" },
  },
} as const satisfies CommandSpec;

async function main(): Promise<void> {
  const a = parseOrExit(process.argv.slice(2), BENCH_AUTOSCALE);
  const streams = Number(a.streams), loadMs = Number(a["load-s"]) * 1000, tokens = Number(a.tokens);
  const backend = await startActorBackend({ model: a.model!, scaling: a.scaling, pages: Math.ceil((streams * (tokens + 64)) / 16) + 16, pageSize: 16 });
  const engine = new ModelEngine(backend);
  const system = backend.system;
  const spec = backend.scaling.autoscale;
  if (!system.scaler || !Object.keys(spec).length) throw new Error(`${a.scaling} autoscales no kind`);
  const t0 = performance.now();
  const sec = (t: number) => Math.round((t - t0)) / 1000;
  const timeline: { t_s: number; kind: string; replicas: number; backlog: number }[] = [];
  system.events.on((e) => e.type === "scaled" && timeline.push({ t_s: sec(performance.now()), kind: e.kind, replicas: e.replicas, backlog: e.backlog }));
  const params: SamplingParams = {
    temperature: 0, top_p: 1, top_k: 0, min_p: 0, presence_penalty: 0, frequency_penalty: 0, repetition_penalty: 1,
    seed: null, max_tokens: tokens, stop_token_ids: [], ignore_eos: true, logprobs: null, prompt_logprobs: false,
  };
  const requests: { start_s: number; ttft_ms: number; ok: boolean; replicas: number }[] = [];
  const one = async (id: string, prompt: number[]) => {
    const start = performance.now();
    let ttft = NaN, ok = true;
    const replicas = Math.max(0, ...Object.keys(spec).map((k) => system.scaler!.replicas(k)));
    try {
      for await (const ev of engine.generate({ id, prompt_ids: prompt, params })) {
        if (ev.type === "token" && Number.isNaN(ttft)) ttft = performance.now() - start;
        if (ev.type === "done" && ev.finish_reason === "error") ok = false;
      }
    } catch {
      ok = false;
    }
    requests.push({ start_s: sec(start), ttft_ms: Math.round(ttft * 10) / 10, ok, replicas });
  };
  const prompt = (c: number) => Array.from({ length: 16 }, (_, i) => ((c * 31 + i * 7) % Math.min(backend.config.vocab_size - 3, 200)) + 3);
  const end = performance.now() + loadMs;
  let n = 0;
  await Promise.all(Array.from({ length: streams }, async (_, c) => {
    while (performance.now() < end) await one(`s${c}-${n++}`, prompt(c));
  }));
  const loadEnded = performance.now();
  const backAtMin = await Promise.all(Object.entries(spec).map(async ([kind, s]) => {
    if (system.scaler!.replicas(kind) > s.min_replicas) {
      await system.events.next((e) => e.type === "scaled" && e.kind === kind && e.replicas === s.min_replicas, 120_000).catch(() => {});
    }
    return [kind, Math.round(performance.now() - loadEnded) / 1000] as const;
  }));
  await one("after-idle", prompt(0)); // a cold start where the actors live with no host
  await backend.close();
  const ttfts = requests.filter((r) => r.ok).map((r) => r.ttft_ms).sort((x, y) => x - y);
  const q = (p: number) => ttfts[Math.min(ttfts.length - 1, Math.floor(p * ttfts.length))] ?? null;
  const out = {
    scaling: a.scaling, model: a.model, streams, load_s: loadMs / 1000, tokens,
    requests: requests.length, failures: requests.filter((r) => !r.ok).length,
    ttft_ms: { p50: q(0.5), p90: q(0.9), max: ttfts.at(-1) ?? null },
    peak_replicas: Object.fromEntries(Object.keys(spec).map((k) => [k, Math.max(0, ...timeline.filter((x) => x.kind === k).map((x) => x.replicas))])),
    back_at_min_after_s: Object.fromEntries(backAtMin),
    after_idle_ttft_ms: requests.at(-1)!.ttft_ms,
    timeline,
  };
  if (a.json) return console.log(JSON.stringify(out));
  console.log(`load step: ${streams} streams for ${out.load_s} s on ${a.scaling}`);
  for (const x of timeline) console.log(`  t=${x.t_s.toFixed(1)} s  ${x.kind}: ${x.replicas} host(s) (backlog ${x.backlog})`);
  console.log(`requests ${out.requests}, failures ${out.failures}, TTFT p50 ${out.ttft_ms.p50} ms p90 ${out.ttft_ms.p90} ms max ${out.ttft_ms.max} ms`);
  console.log(`peak hosts ${JSON.stringify(out.peak_replicas)}; back at min_replicas ${JSON.stringify(out.back_at_min_after_s)} s after the load; first request after idling: TTFT ${out.after_idle_ttft_ms} ms`);
}

if (import.meta.main) await main();
