// The model's actors under failure and idleness: a killed expert worker is restarted and the
// generation still gives the golden tokens; an idle expert actor is passivated and comes back.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startActorBackend } from "../../src/commands/backend.ts";
import { ModelEngine } from "../../src/engine/engine.ts";
import type { RuntimeEvent } from "../../src/runtime/events.ts";
import { collect, greedy } from "../golden/suite.ts";
import { Golden } from "../helpers/golden.ts";

const root = new URL("../..", import.meta.url).pathname;
const model = `${root}test/fixtures/tiny-dsv3`;
const g = new Golden(model);
const want = g.json.batch.completions as number[][];
const prompts = [g.ids("batch.prompt0"), g.ids("batch.prompt1")];
const tmp = mkdtempSync(join(tmpdir(), "moe-sup-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("supervision of model actors", () => {
  test("killing an expert worker mid-generation: restarted, reported, tokens still golden", async () => {
    const backend = await startActorBackend({ model, scaling: `${root}configs/scaling/experts-4-redundant.yaml`, pages: 64, pageSize: 16 });
    const engine = new ModelEngine(backend);
    const events: RuntimeEvent[] = [];
    backend.system.events.on((e) => events.push(e));
    try {
      let tokens = 0;
      const run = collect(engine, "a", prompts[1], greedy(want[1].length));
      // Kill the worker of one expert actor once decoding is under way.
      const killer = (async () => {
        while (tokens === 0 && engine.stats().generation_tokens_total < 3) await Bun.sleep(1);
        tokens = 1;
        backend.system.killHost("worker:2", "test kills it");
      })();
      const got = await run;
      await killer;
      expect(got).toEqual(want[1]);
      expect(events.some((e) => e.type === "host_down" && e.location === "worker:2")).toBe(true);
      // The next request succeeds (at the fallback, worker:0, until worker:2 is back by itself).
      expect(await collect(engine, "b", prompts[0], greedy(want[0].length))).toEqual(want[0]);
      const back = (e: RuntimeEvent) => e.type === "host_up" && e.location === "worker:2" && e.restart;
      if (!events.some(back)) await backend.system.events.next(back, 30_000);
    } finally {
      await engine.close();
    }
  });

  test("an idle expert actor is passivated and re-activated by the next message", async () => {
    const cfg = join(tmp, "idle.yaml");
    writeFileSync(cfg, [
      "placement: worker:0",
      "actors:",
      "  attention: {}",
      "  router: {}",
      "  expert: { placement: worker:1, idle_timeout_ms: 150, experts: { split: 2 } }",
    ].join("\n"));
    const backend = await startActorBackend({ model, scaling: cfg, pages: 64, pageSize: 16 });
    const engine = new ModelEngine(backend);
    const events: RuntimeEvent[] = [];
    backend.system.events.on((e) => events.push(e));
    try {
      expect(await collect(engine, "a", prompts[0], greedy(8))).toEqual(want[0].slice(0, 8));
      await backend.system.events.next((e) => e.type === "passivated" && e.actor.startsWith("expert/"), 5000);
      const before = events.filter((e) => e.type === "activated" && e.actor.startsWith("expert/")).length;
      expect(await collect(engine, "b", prompts[0], greedy(8))).toEqual(want[0].slice(0, 8));
      const again = events.filter((e) => e.type === "activated" && e.actor.startsWith("expert/"));
      expect(again.length).toBeGreaterThan(before);
      const last = again[again.length - 1] as Extract<RuntimeEvent, { type: "activated" }>;
      expect(last.ms).toBeGreaterThanOrEqual(0); // the activation time is reported
    } finally {
      await engine.close();
    }
  });

  test("an actor placed on a missing GPU fails its requests with a clear error; the system stays up", async () => {
    const cfg = join(tmp, "gpu.yaml");
    writeFileSync(cfg, ["placement: worker:0", "actors:", "  attention: {}", "  router: {}", "  expert: { device: cuda:0, experts: { split: 1 } }"].join("\n"));
    const backend = await startActorBackend({ model, scaling: cfg, pages: 64, pageSize: 16 });
    const engine = new ModelEngine(backend, { maxStepRetries: 0 });
    try {
      let error = "";
      for await (const ev of engine.generate({ id: "g", prompt_ids: prompts[0], params: greedy(4) }))
        if (ev.type === "done") error = ev.error ?? "";
      expect(error).toMatch(/cuda(:0)?: (no device available|kernel library .* is missing)/);
      expect(engine.stats().kv_blocks_used).toBe(0);
    } finally {
      await engine.close();
    }
  });
});
