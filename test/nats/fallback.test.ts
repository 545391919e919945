// A fallback on another remote node: with the experts of node experts-a falling back to node
// experts-b (not the gateway), killing experts-a moves expert/0 to experts-b, which serves it on
// its own request subject (it does not host it by placement), with the golden tokens.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { collect, greedy } from "../golden/suite.ts";
import { Golden } from "../helpers/golden.ts";
import { type Cluster, MODEL, root, startCluster } from "./cluster.ts";

const skip = process.env.MOE_SKIP_NATS ? "MOE_SKIP_NATS is set" : (await import("./cluster.ts")).natsUnavailable();
const g = new Golden(MODEL);
const want = g.json.batch.completions as number[][];
const prompts = [g.ids("batch.prompt0"), g.ids("batch.prompt1")];

/** The nats-2-expert-nodes layout, the experts falling back to experts-b, then the gateway. */
function scalingFile(): string {
  const base = readFileSync(`${root}configs/scaling/nats-2-expert-nodes.yaml`, "utf8");
  const yaml = base.replace(/^(\s+)experts: \{ split: 2 \}$/m, "$1experts: { split: 2 }\n$1fallback: [node:experts-b, node:gateway]");
  if (yaml === base) throw new Error("nats-2-expert-nodes.yaml changed shape: update this test");
  const file = join(mkdtempSync(join(tmpdir(), "moe-fallback-")), "scaling.yaml");
  writeFileSync(file, yaml);
  return file;
}

async function generate(c: Cluster, tag: string, n: number, progress = { done: 0 }): Promise<string[]> {
  return Promise.all(Array.from({ length: n }, async (_, i) => {
    try {
      const ids = await collect(c.engine, `${tag}-${i}`, prompts[i % 2]!, greedy(want[i % 2]!.length));
      return JSON.stringify(ids) === JSON.stringify(want[i % 2]) ? "ok" : "wrong tokens";
    } catch (err) {
      return `error: ${(err as Error).message}`;
    } finally {
      progress.done++;
    }
  }));
}

describe.skipIf(!!skip)("over NATS: a fallback on another remote node", () => {
  let c: Cluster;
  beforeAll(async () => (c = await startCluster(scalingFile(), ["experts-a", "experts-b"])), 60_000);
  afterAll(async () => c?.close(), 15_000);

  test("killing experts-a re-activates its experts on experts-b; requests keep the golden tokens", async () => {
    expect(await generate(c, "warm", 2)).toEqual(["ok", "ok"]);
    const sys = c.backend.system;
    const moved = sys.events.next((e) => e.type === "relocated" && e.actor === "expert/0#0", 30_000);
    const served = sys.events.next((e) => e.type === "restarted" && e.actor === "expert/0#0" && e.location === "node:experts-b", 30_000);
    const downs: string[] = [];
    const off = sys.events.on((e) => e.type === "host_down" && downs.push(e.location));
    const progress = { done: 0 };
    const running = Promise.all([1, 2, 3].map((k) => generate(c, `kill${k}`, 4, progress)));
    for (const end = Date.now() + 30_000; progress.done < 1 && Date.now() < end;) await Bun.sleep(20);
    await c.workers[0]!.kill("SIGKILL");
    expect((await running).flat()).toEqual(new Array(12).fill("ok"));
    const m = await moved;
    expect(m.type === "relocated" && [m.from, m.location]).toEqual(["node:experts-a", "node:experts-b"]);
    await served; // activated there, not at the gateway
    expect(await generate(c, "after", 4)).toEqual(["ok", "ok", "ok", "ok"]);
    expect(sys.routeOf("expert/0")).toBe("node:experts-b");
    off();
    // experts-b served expert/0 besides its own, and was never taken for lost.
    expect([...new Set(downs)]).toEqual(["node:experts-a"]);
  }, 120_000);
});
