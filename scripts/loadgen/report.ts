// The benchmark's figures, with vLLM's benchmark_serving field names and table, so its results and
// ours can be compared line by line.

export const METRICS = ["ttft", "tpot", "itl", "e2el"] as const;
export type Metric = (typeof METRICS)[number];

const TITLES: Record<Metric, string> = {
  ttft: "Time to First Token", tpot: "Time per Output Token (excl. 1st token)", itl: "Inter-token Latency", e2el: "End-to-end Latency",
};

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const x = (p / 100) * (sorted.length - 1), lo = Math.floor(x), hi = Math.ceil(x);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (x - lo); // numpy's linear interpolation
}

/** mean_/median_/std_/pNN_<name>_ms of xs (ms). */
export function describe(name: string, xs: number[], ps: number[]): Record<string, number> {
  const s = [...xs].sort((a, b) => a - b), mean = s.length ? s.reduce((a, b) => a + b, 0) / s.length : 0;
  const std = s.length ? Math.sqrt(s.reduce((a, b) => a + (b - mean) ** 2, 0) / s.length) : 0;
  const out: Record<string, number> = { [`mean_${name}_ms`]: mean, [`median_${name}_ms`]: percentile(s, 50), [`std_${name}_ms`]: std };
  for (const p of ps) out[`p${p}_${name}_ms`] = percentile(s, p);
  return out;
}

export function formatTable(r: Record<string, unknown>, ps: number[], metrics: readonly Metric[] = METRICS): string {
  const row = (k: string, v: unknown) => `${k.padEnd(40)}${typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : String(v)}\n`;
  const bar = (t: string) => `${t.padStart(25 + t.length / 2, "-").padEnd(50, "-")}\n`;
  let s = `${"=".repeat(12)} Serving Benchmark Result ${"=".repeat(12)}\n`;
  s += row("Successful requests:", r.completed) + row("Failed requests:", r.failed) + row("Benchmark duration (s):", r.duration);
  s += row("Total input tokens:", r.total_input_tokens) + row("Total generated tokens:", r.total_output_tokens);
  s += row("Request throughput (req/s):", r.request_throughput);
  if (r.request_goodput !== null) s += row("Request goodput (req/s):", r.request_goodput);
  s += row("Output token throughput (tok/s):", r.output_throughput) + row("Total Token throughput (tok/s):", r.total_token_throughput);
  for (const m of metrics) {
    const M = m.toUpperCase();
    s += bar(TITLES[m]) + row(`Mean ${M} (ms):`, r[`mean_${m}_ms`]) + row(`Median ${M} (ms):`, r[`median_${m}_ms`]);
    for (const p of ps) s += row(`P${p} ${M} (ms):`, r[`p${p}_${m}_ms`]);
  }
  return s + "=".repeat(50) + "\n";
}
