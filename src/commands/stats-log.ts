// The periodic engine line vLLM's servers print (its LoggingStatLogger): prompt and generation
// throughput over the last interval, running and waiting sequences, KV cache usage, preemptions and
// the prefix cache hit rate, every 10 s while there is work, silent while idle. `serve
// --disable-log-stats` (vLLM's flag) turns it off.
import type { EngineStats } from "../engine/types.ts";
import type { Logger } from "../log.ts";

export const STATS_INTERVAL_MS = 10_000;

/** The line's fields for the interval between two snapshots, or null when nothing happened in it
 * and nothing is running or waiting. */
export function statsFields(prev: EngineStats | null, now: EngineStats, seconds: number): Record<string, number> | null {
  const d = (k: "prompt_tokens_total" | "generation_tokens_total" | "preemptions_total" | "prefix_cache_queries_total" | "prefix_cache_hits_total") =>
    Math.max(0, (now[k] ?? 0) - (prev?.[k] ?? 0)); // the warm-up takes its tokens back off the counters
  const prompt = d("prompt_tokens_total"), gen = d("generation_tokens_total");
  if (prompt === 0 && gen === 0 && now.running === 0 && now.waiting === 0) return null;
  const queries = d("prefix_cache_queries_total");
  return {
    prompt_throughput: round(prompt / seconds), generation_throughput: round(gen / seconds),
    running: now.running, waiting: now.waiting,
    kv_cache_usage_perc: round(now.kv_blocks_total > 0 ? (100 * now.kv_blocks_used) / now.kv_blocks_total : 0),
    preemptions: d("preemptions_total"),
    ...(now.prefix_cache_queries_total !== undefined ? { prefix_cache_hit_rate_perc: round(queries > 0 ? (100 * d("prefix_cache_hits_total")) / queries : 0) } : {}),
  };
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

/** Logs statsFields every `intervalMs`; returns the stop. The timer never keeps the process alive. */
export function startStatsLog(log: Logger, stats: () => EngineStats, intervalMs = STATS_INTERVAL_MS): () => void {
  let prev: EngineStats | null = null, at = performance.now();
  const timer = setInterval(() => {
    let now: EngineStats;
    try {
      now = stats();
    } catch {
      return; // not loaded yet, or closing
    }
    const t = performance.now();
    const f = statsFields(prev, now, (t - at) / 1000);
    [prev, at] = [now, t];
    if (!f) return;
    const hit = f.prefix_cache_hit_rate_perc !== undefined ? `, prefix cache hit rate: ${f.prefix_cache_hit_rate_perc}%` : "";
    log.info(`avg prompt throughput: ${f.prompt_throughput} tokens/s, avg generation throughput: ${f.generation_throughput} tokens/s, ` +
      `running: ${f.running} reqs, waiting: ${f.waiting} reqs, KV cache usage: ${f.kv_cache_usage_perc}%, preemptions: ${f.preemptions}${hit}`,
    { event: "engine_stats", component: "engine", ...f }, { brief: true });
  }, intervalMs);
  timer.unref?.();
  return () => clearInterval(timer);
}
