// No lost state (issue 13, item 1): an attention actor holding KV pages of unfinished sequences is
// not passivated for idleness; and when its cache is lost anyway (restart, host death), the
// sequences that lived there are recomputed, never continued on a missing cache. Greedy outputs
// stay the golden ones throughout.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startActorBackend } from "../../src/commands/backend.ts";
import { DirectBackend } from "../../src/engine/direct.ts";
import { ModelEngine } from "../../src/engine/engine.ts";
import type { SeqResult, SeqWork } from "../../src/protocol.ts";
import type { RuntimeEvent } from "../../src/runtime/events.ts";
import { collect, greedy } from "../golden/suite.ts";
import { Golden } from "../helpers/golden.ts";

const root = new URL("../..", import.meta.url).pathname;
const model = `${root}test/fixtures/tiny-dsv3`;
const g = new Golden(model);
const want = g.json.batch.completions as number[][];
const prompts = [g.ids("batch.prompt0"), g.ids("batch.prompt1")];
const tmp = mkdtempSync(join(tmpdir(), "moe-live-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A backend whose attention side loses its whole cache (a fresh runner, as a restarted or
 * re-activated actor has) after every `every` steps, between steps, where no ask fails. */
class ForgetfulBackend extends DirectBackend {
  private inner: DirectBackend;
  steps = 0;
  constructor(private readonly every: number) {
    super(model, { pages: 64, pageSize: 16 });
    this.inner = new DirectBackend(model, { pages: 64, pageSize: 16 });
  }
  override async step(replica: number, work: SeqWork[]): Promise<SeqResult[]> {
    if (++this.steps % this.every === 0) this.inner = new DirectBackend(model, { pages: 64, pageSize: 16 });
    return this.inner.step(replica, work);
  }
}

describe("live KV state", () => {
  test("a cache lost between steps is recomputed: greedy output unchanged", async () => {
    const backend = new ForgetfulBackend(5);
    const logs: string[] = [];
    const engine = new ModelEngine(backend, { log: (m) => logs.push(m) });
    try {
      const n = want[0].length;
      const got = await Promise.all([collect(engine, "a", prompts[0], greedy(n)), collect(engine, "b", prompts[1], greedy(n))]);
      expect(got).toEqual([want[0], want[1]]);
      expect(logs.some((l) => /lost the cache/.test(l))).toBe(true);
    } finally {
      await engine.close();
    }
  }, 60_000);

  test("idle_timeout_ms 1 for every kind: attention is not passivated mid-generation, output golden", async () => {
    const cfg = join(tmp, "idle-1ms.yaml");
    const base = readFileSync(`${root}configs/scaling/single-worker.yaml`, "utf8");
    writeFileSync(cfg, base.replace(/^idle_timeout_ms:.*$/m, "idle_timeout_ms: 1"));
    const backend = await startActorBackend({ model, scaling: cfg, pages: 64, pageSize: 16 });
    const events: RuntimeEvent[] = [];
    backend.system.events.on((e) => events.push(e));
    const logs: string[] = [];
    const engine = new ModelEngine(backend, { log: (m) => logs.push(m) });
    try {
      const n = want[0].length;
      for (let round = 0; round < 2; round++) {
        const got = await Promise.all([collect(engine, `a${round}`, prompts[0], greedy(n)), collect(engine, `b${round}`, prompts[1], greedy(n))]);
        expect(got).toEqual([want[0], want[1]]);
      }
      expect(logs.filter((l) => /lost the cache|failed/.test(l))).toEqual([]);
      // Once every sequence has ended (and been released), the attention actor may idle out.
      const idled = () => events.some((e) => e.type === "passivated" && e.actor.startsWith("attention/"));
      for (const deadline = Date.now() + 10_000; !idled() && Date.now() < deadline;) await Bun.sleep(5);
      expect(idled()).toBe(true);
    } finally {
      await engine.close();
    }
  }, 90_000);

  test("killing the attention actor's host mid-generation: recomputed, greedy output golden", async () => {
    const backend = await startActorBackend({ model, scaling: `${root}configs/scaling/single-worker.yaml`, pages: 64, pageSize: 16 });
    const events: RuntimeEvent[] = [];
    backend.system.events.on((e) => events.push(e));
    const engine = new ModelEngine(backend);
    try {
      const n = want[0].length;
      const runs = Promise.all([collect(engine, "a", prompts[0], greedy(n)), collect(engine, "b", prompts[1], greedy(n))]);
      const deadline = Date.now() + 30_000;
      while (engine.stats().generation_tokens_total < 4 && Date.now() < deadline) await Bun.sleep(1);
      backend.system.killHost(backend.system.locate("attention/0"), "test kills it");
      expect(await runs).toEqual([want[0], want[1]]);
      expect(events.some((e) => e.type === "host_down")).toBe(true);
    } finally {
      await engine.close();
    }
  }, 90_000);
});
