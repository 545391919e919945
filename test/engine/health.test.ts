// The engine's health and its failures to reach a host: not ready until a first step has run
// (warmup), not ready while an actor kind has no live host; a host that stops answering ends the
// requests within the scaling config's ask_timeout_ms with an "unavailable" error (HTTP 503).
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startActorBackend } from "../../src/commands/backend.ts";
import { BackendUnavailable } from "../../src/engine/backend.ts";
import { DirectBackend } from "../../src/engine/direct.ts";
import { ModelEngine } from "../../src/engine/engine.ts";
import type { SeqResult, SeqWork } from "../../src/protocol.ts";
import type { Frame } from "../../src/runtime/frames.ts";
import type { HostSpec, Link, Transport } from "../../src/runtime/transport.ts";
import { WorkerTransport } from "../../src/runtime/worker-transport.ts";
import { collect, greedy } from "../golden/suite.ts";
import { Golden } from "../helpers/golden.ts";

const root = new URL("../..", import.meta.url).pathname;
const model = `${root}test/fixtures/tiny-dsv3`;
const g = new Golden(model);
const want = g.json.batch.completions as number[][];
const prompt = g.ids("batch.prompt0");
const tmp = mkdtempSync(join(tmpdir(), "moe-health-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function lastEvent(engine: ModelEngine, id: string) {
  let done;
  for await (const ev of engine.generate({ id, prompt_ids: prompt, params: greedy(4) })) if (ev.type === "done") done = ev;
  return done!;
}

/** Bun workers whose hosts stop answering (alive, silent: a hung host) once `stall` is set. */
class StallingWorkers implements Transport {
  readonly scheme = "worker";
  stall = false;
  private readonly inner = new WorkerTransport();
  open(location: string, host: HostSpec): Link {
    const link = this.inner.open(location, host);
    return { ...link, send: (f: Frame) => (this.stall && f.t === "req" ? undefined : link.send(f)) };
  }
}

describe("engine health", () => {
  test("not ready before a first step; warmup makes it ready and leaves the counters alone", async () => {
    const engine = new ModelEngine(new DirectBackend(model, { pages: 64, pageSize: 16 }));
    try {
      expect(engine.health().ready).toBe(false);
      expect(engine.health().reason).toMatch(/warming up/);
      await engine.warmup();
      expect(engine.health()).toEqual({ ready: true });
      const s = engine.stats();
      expect([s.prompt_tokens_total, s.generation_tokens_total, s.kv_blocks_used]).toEqual([0, 0, 0]);
      expect(await collect(engine, "a", prompt, greedy(8))).toEqual(want[0].slice(0, 8));
    } finally {
      await engine.close();
    }
    expect(engine.health()).toEqual({ ready: false, reason: "shutting down" });
  }, 60_000);

  test("not ready while an actor kind has no live host", async () => {
    const backend = await startActorBackend({ model, scaling: `${root}configs/scaling/single-worker.yaml`, pages: 64, pageSize: 16 });
    const engine = new ModelEngine(backend);
    try {
      await engine.warmup();
      expect(engine.health()).toEqual({ ready: true });
      const system = backend.system as unknown as { isReachable(t: string): boolean };
      system.isReachable = (t: string) => !t.startsWith("expert/");
      const h = engine.health();
      expect(h.ready).toBe(false);
      expect(h.reason).toMatch(/expert\/0/);
    } finally {
      await engine.close();
    }
  }, 60_000);

  test("a step no host could run ends its sequences as unavailable after the retries", async () => {
    class Down extends DirectBackend {
      override step(_r: number, _w: SeqWork[]): Promise<SeqResult[]> {
        return Promise.reject(new BackendUnavailable("attention/0#0: no host can take it"));
      }
    }
    const engine = new ModelEngine(new Down(model, { pages: 64, pageSize: 16 }));
    try {
      const done = await lastEvent(engine, "x");
      expect(done.finish_reason).toBe("error");
      expect(done.error_code).toBe("unavailable");
      expect(engine.stats().kv_blocks_used).toBe(0);
    } finally {
      await engine.close();
    }
  }, 60_000);

  test("a hung host: the request ends within ask_timeout_ms (from the scaling config) as unavailable", async () => {
    const cfg = join(tmp, "ask-timeout.yaml");
    writeFileSync(cfg, `${readFileSync(`${root}configs/scaling/single-worker.yaml`, "utf8")}\nask_timeout_ms: 300\n`);
    const workers = new StallingWorkers();
    const backend = await startActorBackend({ model, scaling: cfg, pages: 64, pageSize: 16, transports: [workers] });
    const engine = new ModelEngine(backend);
    try {
      expect(await collect(engine, "a", prompt, greedy(4))).toEqual(want[0].slice(0, 4));
      workers.stall = true;
      const done = await lastEvent(engine, "b"); // the test's own timeout is far below the old 120 s
      expect(done.finish_reason).toBe("error");
      expect(done.error_code).toBe("unavailable");
    } finally {
      workers.stall = false;
      await engine.close();
    }
  }, 20_000);
});
