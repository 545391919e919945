// serve's periodic engine line (vLLM's "Avg prompt throughput ..."): figures over the interval, silent
// while idle, off with --disable-log-stats (issue 18).
import { describe, expect, test } from "bun:test";
import { startStatsLog, statsFields } from "../../src/commands/stats-log.ts";
import type { EngineStats } from "../../src/engine/types.ts";
import { Logger } from "../../src/log.ts";
import { until } from "./helpers.ts";

const idle: EngineStats = { running: 0, waiting: 0, kv_blocks_used: 0, kv_blocks_total: 64, prompt_tokens_total: 100,
  generation_tokens_total: 50, expert_load: {}, preemptions_total: 1 };

describe("engine stats lines", () => {
  test("throughput over the interval, usage, preemptions since the last line; none while idle", () => {
    const busy = { ...idle, running: 3, waiting: 2, kv_blocks_used: 16, prompt_tokens_total: 300, generation_tokens_total: 250, preemptions_total: 4 };
    expect(statsFields(idle, busy, 10)).toEqual({ prompt_throughput: 20, generation_throughput: 20, running: 3, waiting: 2,
      kv_cache_usage_perc: 25, preemptions: 3 });
    expect(statsFields(busy, { ...busy, running: 0, waiting: 0 }, 10)).toBeNull(); // nothing happened, nothing queued
    expect(statsFields(busy, busy, 10)).not.toBeNull(); // still running: worth a line
    const cached = statsFields({ ...idle, prefix_cache_queries_total: 100, prefix_cache_hits_total: 10 },
      { ...idle, generation_tokens_total: 60, prefix_cache_queries_total: 300, prefix_cache_hits_total: 160 }, 1)!;
    expect(cached.prefix_cache_hit_rate_perc).toBe(75);
  });

  test("logged every interval while there is work, as a JSON line with its fields", async () => {
    const lines: string[] = [];
    let s: EngineStats = idle;
    const stop = startStatsLog(new Logger({ format: "json", write: (l) => lines.push(l) }), () => s, 5);
    s = { ...idle, running: 1, generation_tokens_total: 80 };
    await until(() => lines.length > 0);
    stop();
    const o = JSON.parse(lines[0]!);
    expect(o).toMatchObject({ level: "info", event: "engine_stats", component: "engine", running: 1, waiting: 0 });
    expect(o.msg).toContain("avg generation throughput");
    expect(o.generation_throughput).toBeGreaterThan(0);
  });
});
