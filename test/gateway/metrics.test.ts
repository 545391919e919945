// Issue 18, /metrics: vLLM's names (moe_ for vllm:) with a model_name label on every series, and
// preemptions counted there and logged; runtime events (restarts, hosts, relocations, scaling) logged.
import { describe, expect, test } from "bun:test";
import { engineLogHooks, logRuntimeEvent, logRuntimeEvents } from "../../src/commands/serve-log.ts";
import { loadModelConfig } from "../../src/config/model.ts";
import type { ModelBackend, SeqResult, SeqWork } from "../../src/engine/backend.ts";
import { ModelEngine } from "../../src/engine/engine.ts";
import type { Preemption, SamplingParams } from "../../src/engine/types.ts";
import { createApp } from "../../src/gateway/app.ts";
import { Logger } from "../../src/log.ts";
import { EventLog, type RuntimeEvent } from "../../src/runtime/events.ts";
import { harness, loadCodec, MODEL, post } from "./helpers.ts";

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (\S+)$/;

/** Every sample line of an exposition: name, labels (as written) and value; fails on a malformed line. */
function samples(text: string): { name: string; labels: string; value: number }[] {
  return text.split("\n").filter((l) => l && !l.startsWith("#")).map((l) => {
    const m = SAMPLE.exec(l);
    if (!m) throw new Error(`not a Prometheus sample line: ${l}`);
    return { name: m[1]!, labels: m[2] ?? "", value: Number(m[3]) };
  });
}

describe("/metrics names and labels", () => {
  test("every series carries model_name; vLLM's metrics are there under their vLLM suffixes", async () => {
    const h = await harness({ stepMs: 1 }, { servedModelName: "fortune" });
    await post(h, "/v1/completions", { model: "fortune", prompt: "hi", max_tokens: 3, ignore_eos: true });
    const text = await (await h.app.request("/metrics")).text();
    const all = samples(text);
    expect(all.length).toBeGreaterThan(50);
    for (const s of all) expect(s.labels).toContain('model_name="fortune"');
    const names = new Set(all.map((s) => s.name));
    // vllm:<suffix> in vLLM's PrometheusStatLogger (vllm/v1/metrics/loggers.py) -> moe_<suffix>
    for (const suffix of ["num_requests_running", "num_requests_waiting", "kv_cache_usage_perc", "num_preemptions_total",
      "prompt_tokens_total", "generation_tokens_total", "request_success_total", "time_to_first_token_seconds_bucket",
      "time_per_output_token_seconds_bucket", "inter_token_latency_seconds_bucket", "e2e_request_latency_seconds_bucket",
      "e2e_request_latency_seconds_sum", "e2e_request_latency_seconds_count", "request_prompt_tokens_bucket",
      "request_generation_tokens_bucket", "spec_decode_num_draft_tokens_total", "spec_decode_num_accepted_tokens_total"]) {
      expect(names).toContain(`moe_${suffix}`);
    }
    // kept: what vLLM has no name for
    for (const name of ["moe_requests_total", "moe_kv_cache_blocks_used", "moe_kv_cache_blocks_total", "moe_expert_tokens_total"])
      expect(names).toContain(name);
    expect(names).not.toContain("moe_kv_cache_usage_ratio");
    expect(text).toContain('moe_request_success_total{model_name="fortune",finished_reason="length"} 1');
    expect(text).toContain('moe_generation_tokens_total{model_name="fortune"} 3');
    expect(text).toContain('# TYPE moe_kv_cache_usage_perc gauge');
    expect(text).toContain('# TYPE moe_num_preemptions_total counter');
    const usage = all.find((s) => s.name === "moe_kv_cache_usage_perc")!.value;
    expect(usage).toBeGreaterThanOrEqual(0);
    expect(usage).toBeLessThanOrEqual(1);
  });

  test("requests are counted by route: the API's own, /tokenize included; anything else is \"other\"", async () => {
    const h = await harness();
    expect((await post(h, "/tokenize", { model: MODEL, prompt: "hi" })).status).toBe(200);
    await h.app.request("/nowhere");
    const text = await (await h.app.request("/metrics")).text();
    expect(text).toContain(`moe_requests_total{model_name="${MODEL}",route="/tokenize",status="200"} 1`);
    expect(text).toContain(`moe_requests_total{model_name="${MODEL}",route="other",status="404"} 1`);
  });

  test("an engine without stats yet (loading) still gives labelled gateway series", async () => {
    const h = await harness();
    h.engine.stats = () => { throw new Error("the model is still loading"); };
    const all = samples(await (await h.app.request("/metrics")).text());
    expect(all.length).toBeGreaterThan(10);
    for (const s of all) expect(s.labels).toContain(`model_name="${MODEL}"`);
  });
});

/** The model's shape without its weights: every step "samples" token 5 (never EOS) into a KV cache
 * of 4 pages of 4 tokens, so that two 12-token sequences cannot both fit. */
class TinyCacheBackend implements ModelBackend {
  readonly config = loadModelConfig(new URL("../fixtures/tiny-dsv3/config.json", import.meta.url).pathname);
  readonly pageSize = 4;
  readonly pages = 4;
  readonly replicas = 1;
  async step(_replica: number, work: SeqWork[]): Promise<SeqResult[]> {
    return work.map((w) => ({ seq: w.seq, cache: "c1", ...(w.sample ? { sampled: { token: 5 } } : {}) }));
  }
  async expertLoad() { return {}; }
  async close() {}
}

const greedy = (max_tokens: number): SamplingParams => ({
  temperature: 0, top_p: 1, top_k: 0, min_p: 0, presence_penalty: 0, frequency_penalty: 0, repetition_penalty: 1,
  seed: null, max_tokens, stop_token_ids: [], ignore_eos: true, logprobs: null, prompt_logprobs: false,
});

describe("preemptions", () => {
  test("counted in EngineStats and /metrics (moe_num_preemptions_total), each one logged", async () => {
    const lines: string[] = [];
    const log = new Logger({ format: "json", write: (l) => lines.push(l) });
    const seen: Preemption[] = [];
    const hooks = engineLogHooks(log);
    const engine = new ModelEngine(new TinyCacheBackend(), {
      servedModelName: "tiny", maxBatchTokens: 64,
      log: hooks.log, onPreempt: (p) => { seen.push(p); hooks.onPreempt!(p); },
    });
    try {
      const run = async (id: string) => {
        let n = 0;
        for await (const ev of engine.generate({ id, prompt_ids: [1, 2, 3, 4], params: greedy(8) })) if (ev.type === "token") n++;
        return n;
      };
      expect(await Promise.all([run("first"), run("second")])).toEqual([8, 8]); // both finish, one recomputed
      const count = engine.stats().preemptions_total!;
      expect(count).toBeGreaterThan(0);
      expect(seen).toHaveLength(count);
      expect(seen[0]).toMatchObject({ request_id: "second", replica: 0 }); // the latest arrival gives way
      expect(seen[0]!.computed_tokens).toBeGreaterThan(0);
      const logged = lines.map((l) => JSON.parse(l)).filter((o) => o.event === "preempted");
      expect(logged).toHaveLength(count);
      expect(logged[0]).toMatchObject({ level: "info", component: "engine", request_id: "second", replica: 0 });
      const app = createApp({ engine, tokenizer: await loadCodec(), servedModelName: "tiny" });
      const text = await (await app.request("/metrics")).text();
      expect(text).toContain(`moe_num_preemptions_total{model_name="tiny"} ${count}`);
    } finally {
      await engine.close();
    }
  });
});

describe("runtime events in the log", () => {
  const at = Date.now();
  const events: RuntimeEvent[] = [
    { type: "activated", actor: "expert/0", location: "worker:0", ms: 12.5, at },
    { type: "restarted", actor: "attention/0", location: "worker:0", ms: 40, cause: "boom", at },
    { type: "failed", actor: "router/0", location: "worker:1", phase: "handle", error: "bad", msgType: "route", at },
    { type: "host_up", location: "process:1", ms: 300, restart: true, at },
    { type: "host_down", location: "node:b", reason: "heartbeat lost", inFlight: 2, at },
    { type: "relocated", actor: "expert/1", location: "node:gateway", from: "node:b", reason: "node:b is lost", at },
    { type: "passivated", actor: "expert/2", location: "worker:0", ms: 3, idleMs: 60000, at },
  ];

  test("each kind is one line with its fields and a level that fits", () => {
    const lines: string[] = [];
    const log = new Logger({ format: "json", write: (l) => lines.push(l) });
    for (const e of events) logRuntimeEvent(log, e);
    const got = lines.map((l) => JSON.parse(l));
    expect(got.map((o) => o.event)).toEqual(events.map((e) => e.type));
    expect(got.map((o) => o.level)).toEqual(["info", "warn", "error", "info", "warn", "warn", "info"]);
    expect(got[1]).toMatchObject({ actor: "attention/0", location: "worker:0", cause: "boom" });
    expect(got[4]).toMatchObject({ location: "node:b", reason: "heartbeat lost", inFlight: 2 });
    expect(got[5]).toMatchObject({ actor: "expert/1", from: "node:b", location: "node:gateway" });
    expect(got[5].msg).toContain("relocated from node:b to node:gateway");
  });

  test("a kind the runtime gains later (a scaling event) is logged too; text lines say it in words", () => {
    const lines: string[] = [];
    const scaled = { type: "scaled", actor: "expert", from: 1, to: 3, reason: "queue", at } as unknown as RuntimeEvent;
    logRuntimeEvent(new Logger({ format: "json", write: (l) => lines.push(l) }), scaled);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: "info", event: "scaled", actor: "expert", from: 1, to: 3 });
    logRuntimeEvent(new Logger({ format: "text", write: (l) => lines.push(l) }), events[1]!);
    expect(lines[1]).toMatch(/ WARN  attention\/0 restarted on worker:0 in 40\.0 ms \(after: boom\)\n$/);
  });

  test("a backend's event log: what happened at start-up, then what comes", () => {
    const lines: string[] = [];
    const log = new Logger({ format: "json", write: (l) => lines.push(l) });
    const ev = new EventLog();
    ev.emit(events[0]!);
    const off = logRuntimeEvents(log, { system: { events: ev } });
    ev.emit(events[4]!);
    off();
    ev.emit(events[5]!);
    expect(lines.map((l) => JSON.parse(l).event)).toEqual(["activated", "host_down"]);
    expect(JSON.parse(lines[0]!).component).toBe("runtime");
    expect(logRuntimeEvents(log, {})()).toBeUndefined(); // the direct backend has no events
  });
});
