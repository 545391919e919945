// A benchmark run: requests sent at vLLM's arrival process (Poisson at --request-rate, or gamma
// intervals with --burstiness; inf sends them all at once), at most --max-concurrency in flight,
// stopped by --max-seconds; the figures under vLLM's names.
import { type ClientOptions, type Outcome, sendOne } from "./client.ts";
import type { BenchRequest, Rand } from "./datasets.ts";
import { describe, type Metric } from "./report.ts";

export interface RunOptions extends ClientOptions {
  backend: string;
  numPrompts: number;
  concurrency: number | null;
  requestRate: number;
  burstiness: number;
  maxSeconds: number | null;
  goodput: Record<string, number>;
  percentiles: number[];
  metrics: readonly Metric[];
}

/** Gamma(shape, scale) by Marsaglia and Tsang (shape < 1 boosted by U^(1/shape)). */
function gamma(shape: number, scale: number, rand: Rand): number {
  if (shape < 1) return gamma(shape + 1, scale, rand) * Math.pow(rand(), 1 / shape);
  const d = shape - 1 / 3, c = 1 / Math.sqrt(9 * d);
  for (;;) {
    const n = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
    const v = (1 + c * n) ** 3;
    if (v > 0 && Math.log(1 - rand()) < 0.5 * n * n + d - d * v + d * Math.log(v)) return d * v * scale;
  }
}

export interface RunResult {
  result: Record<string, unknown>;
  outcomes: Outcome[];
}

export async function runRequests(a: RunOptions, reqs: BenchRequest[], rand: Rand): Promise<RunResult> {
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
  const tpot = (o: Outcome) => (o.e2el - o.ttft) / (o.outputTokens - 1);
  const good = ok.filter((o) => (a.goodput.ttft === undefined || o.ttft <= a.goodput.ttft)
    && (a.goodput.e2el === undefined || o.e2el <= a.goodput.e2el)
    && (a.goodput.tpot === undefined || o.outputTokens <= 1 || tpot(o) <= a.goodput.tpot));
  const totalIn = ok.reduce((s, o) => s + o.promptLen, 0), totalOut = ok.reduce((s, o) => s + o.outputTokens, 0);
  const values: Record<Metric, number[]> = {
    ttft: ok.map((o) => o.ttft), tpot: ok.filter((o) => o.outputTokens > 1).map(tpot), itl: ok.flatMap((o) => o.itl), e2el: ok.map((o) => o.e2el),
  };
  const result: Record<string, unknown> = {
    date: new Date().toISOString(), backend: a.backend, endpoint: a.path, model_id: a.model, base_url: a.baseUrl,
    num_prompts: a.numPrompts, request_rate: a.requestRate === Infinity ? "inf" : a.requestRate, burstiness: a.burstiness,
    max_concurrency: a.concurrency, duration, completed: ok.length, failed: outcomes.length - ok.length,
    not_sent: reqs.length - outcomes.length, total_input_tokens: totalIn, total_output_tokens: totalOut,
    request_throughput: ok.length / duration, request_goodput: Object.keys(a.goodput).length ? good.length / duration : null,
    output_throughput: totalOut / duration, total_token_throughput: (totalIn + totalOut) / duration,
    input_lens: ok.map((o) => o.promptLen), output_lens: ok.map((o) => o.outputTokens),
    ...Object.assign({}, ...a.metrics.map((m) => describe(m, values[m], a.percentiles))),
    errors: [...new Set(outcomes.filter((o) => !o.ok).map((o) => o.error!))].slice(0, 10),
  };
  return { result, outcomes };
}
