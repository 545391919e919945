// No lost state across hosts (issue 13, items 1 and 2): the node holding attention replica 1 is
// SIGKILLed mid-generation. Its actor is re-activated on the fallback (the gateway's node), the
// in-flight step is resent there, the new incarnation refuses to continue caches it does not hold,
// and the engine recomputes those sequences: every greedy output is still the golden one.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { RuntimeEvent } from "../../src/runtime/events.ts";
import { collect, greedy } from "../golden/suite.ts";
import { Golden } from "../helpers/golden.ts";
import { type Cluster, MODEL, natsUnavailable, root, startCluster } from "./cluster.ts";

const skip = process.env.MOE_SKIP_NATS ? "MOE_SKIP_NATS is set" : natsUnavailable();
if (skip) console.warn(`[nats tests] SKIPPED: ${skip}`);
const g = new Golden(MODEL);
const want = g.json.batch.completions as number[][];
const prompts = [g.ids("batch.prompt0"), g.ids("batch.prompt1")];

describe.skipIf(!!skip)("over NATS: losing an attention node mid-generation", () => {
  let c: Cluster;
  beforeAll(async () => {
    c = await startCluster(`${root}configs/scaling/nats-2-attention-nodes.yaml`, ["attention-b", "experts-a", "experts-b"]);
  }, 30_000);
  afterAll(async () => c?.close(), 15_000);

  test("the sequences of the lost replica are recomputed on the fallback: greedy outputs golden", async () => {
    const n = want[0].length;
    const events: RuntimeEvent[] = [];
    c.backend.system.events.on((e) => events.push(e));
    const runs = Promise.all(Array.from({ length: 4 }, (_, i) => collect(c.engine, `s${i}`, prompts[i % 2], greedy(n))));
    const deadline = Date.now() + 20_000;
    while (c.engine.stats().generation_tokens_total < 8 && Date.now() < deadline) await Bun.sleep(5);
    await c.workers.find((w) => w.node === "attention-b")!.kill("SIGKILL");
    const got = await runs;
    expect(got).toEqual([want[0], want[1], want[0], want[1]]);
    expect(events.some((e) => e.type === "relocated" && e.actor.startsWith("attention/1") && e.from === "node:attention-b")).toBe(true);
    // A fresh attention/1 (a new cache incarnation) on the fallback took the resent work.
    const fresh = (e: RuntimeEvent) => (e.type === "activated" || e.type === "restarted") && e.actor.startsWith("attention/1") && e.location === "node:gateway";
    expect(events.some(fresh)).toBe(true);
    // The next requests go on too (on the fallback, or on the node once it is back).
    expect(await collect(c.engine, "after", prompts[1], greedy(n))).toEqual(want[1]);
  }, 60_000);
});
