// Actors across processes over NATS: a nats-server on a free loopback port, `moe worker` processes
// for the expert (and attention) nodes, and the gateway side in this process. Skipped, with a
// message, where nats-server is missing and cannot be installed.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { ModelEngine } from "../../src/engine/engine.ts";
import { collect, greedy } from "../golden/suite.ts";
import { Golden } from "../helpers/golden.ts";
import { type Cluster, MODEL, root, startCluster } from "./cluster.ts";

const skip = process.env.MOE_SKIP_NATS ? "MOE_SKIP_NATS is set" : (await import("./cluster.ts")).natsUnavailable();
if (skip) console.warn(`[nats tests] SKIPPED: ${skip}`);
const g = new Golden(MODEL);
const want = g.json.batch.completions as number[][];
const prompts = [g.ids("batch.prompt0"), g.ids("batch.prompt1")];

/** n streams, each `rounds` greedy requests in a row; each request ends "ok", "wrong tokens" or its error. */
async function load(engine: ModelEngine, n: number, tag: string, rounds = 1, progress = { done: 0 }): Promise<string[]> {
  const streams = await Promise.all(Array.from({ length: n }, async (_, i) => {
    const out: string[] = [];
    for (let k = 0; k < rounds; k++) {
      try {
        const ids = await collect(engine, `${tag}-${i}-${k}`, prompts[i % 2]!, greedy(want[i % 2]!.length));
        out.push(JSON.stringify(ids) === JSON.stringify(want[i % 2]) ? "ok" : "wrong tokens");
      } catch (err) {
        out.push(`error: ${(err as Error).message}`);
      }
      progress.done++;
    }
    return out;
  }));
  return streams.flat();
}

async function waitFor(ok: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`condition not met within ${ms} ms`);
    await Bun.sleep(20);
  }
}

const counts = (r: string[]) => r.reduce<Record<string, number>>((m, x) => ((m[x.startsWith("error") ? "error" : x] = (m[x.startsWith("error") ? "error" : x] ?? 0) + 1), m), {});

describe.skipIf(!!skip)("over NATS: gateway + two expert worker processes", () => {
  let c: Cluster;
  beforeAll(async () => (c = await startCluster(`${root}configs/scaling/nats-2-expert-nodes.yaml`, ["experts-a", "experts-b"])), 30_000);
  afterAll(async () => c?.close(), 15_000);

  test("greedy completions equal the golden continuations", async () => {
    const out = await Promise.all(prompts.map((p, i) => collect(c.engine, `g${i}`, p, greedy(want[i]!.length))));
    expect(out).toEqual(want);
  }, 20_000);

  test("16 concurrent greedy streams complete with no errors", async () => {
    expect(counts(await load(c.engine, 16, "c16"))).toEqual({ ok: 16 });
  }, 30_000);

  test("the nodes and their actors are in the heartbeat directory", () => {
    const dir = Object.fromEntries(c.transport.directory().map((n) => [n.node, n.actors]));
    expect(dir).toEqual({ "experts-a": ["expert/0"], "experts-b": ["expert/1"] });
  });

  test("killing an expert worker mid-generation: every request completes with the golden tokens, nothing restarted", async () => {
    const sys = c.backend.system;
    const moved = sys.events.next((e) => e.type === "relocated" && e.actor === "expert/0#0" && e.location === "node:gateway", 30_000);
    const pid = c.workers[1]!.proc!.pid;
    const progress = { done: 0 };
    const running = load(c.engine, 8, "kill", 4, progress);
    // Mid-generation: the first requests are done, the other streams are decoding.
    await waitFor(() => progress.done >= 1, 30_000);
    await c.workers[0]!.kill("SIGKILL");
    const r = await running;
    console.log(`[nats tests] expert worker killed mid-generation: ${JSON.stringify(counts(r))}`, r.find((x) => x !== "ok") ?? "");
    expect(counts(r)).toEqual({ ok: 32 });
    // The experts of the lost node were re-activated on the fallback, the gateway's own node.
    const m = await moved;
    expect(m.type === "relocated" && m.from).toBe("node:experts-a");
    expect(sys.isReachable("expert/0")).toBe(true);
    expect(sys.routeOf("expert/0")).toBe("node:gateway");
    expect(sys.hosts().find((h) => h.location === "node:experts-a")?.lost).toBe(true);
    expect(counts(await load(c.engine, 8, "after-kill"))).toEqual({ ok: 8 });
    expect(c.workers[0]!.proc).toBeNull(); // nothing was restarted
    expect([c.workers[1]!.proc!.pid, c.workers[1]!.proc!.exitCode]).toEqual([pid, null]);
  }, 90_000);

  test("the killed worker comes back: its experts go home, requests stay correct", async () => {
    const sys = c.backend.system;
    const home = sys.events.next((e) => e.type === "relocated" && e.actor === "expert/0#0" && e.location === "node:experts-a", 60_000);
    const freed = sys.events.next((e) => e.type === "passivated" && e.actor === "expert/0#0" && e.location === "node:gateway", 60_000);
    c.workers[0]!.start();
    await home;
    await freed; // the gateway lets go of the copy's weights
    expect(sys.routeOf("expert/0")).toBe("node:experts-a");
    expect(counts(await load(c.engine, 8, "after-return"))).toEqual({ ok: 8 });
  }, 90_000);

  test("restarting nats-server during load: the system recovers without restarting any process", async () => {
    const pids = c.workers.map((w) => w.proc!.pid);
    const running = load(c.engine, 8, "nats", 6);
    await Bun.sleep(200);
    await c.server.stop();
    await Bun.sleep(300);
    await c.server.start();
    const r = await running;
    console.log(`[nats tests] nats-server restarted during load: ${JSON.stringify(counts(r))}`, r.find((x) => x.startsWith("error")) ?? "");
    for (const x of r) expect(x === "ok" || /host_down|NATS|timed out|gave up|unreachable/.test(x)).toBe(true);
    expect(counts(await load(c.engine, 8, "after-nats"))).toEqual({ ok: 8 });
    expect(c.workers.map((w) => w.proc!.pid)).toEqual(pids);
    expect(c.workers.every((w) => w.proc!.exitCode === null)).toBe(true);
  }, 40_000);
});

describe.skipIf(!!skip)("over NATS: two attention replicas on two nodes sharing the expert nodes", () => {
  let c: Cluster;
  beforeAll(async () => (c = await startCluster(`${root}configs/scaling/nats-2-attention-nodes.yaml`, ["attention-b", "experts-a", "experts-b"])), 30_000);
  afterAll(async () => c?.close(), 15_000);

  test("greedy completions on both replicas equal the golden continuations", async () => {
    expect(counts(await load(c.engine, 8, "dp"))).toEqual({ ok: 8 });
  }, 30_000);
});

describe.skipIf(!!skip)("NATS wire and worker command", () => {
  test("payloads above max_payload are chunked and reassembled, both ways", async () => {
    const { NatsServer } = await import("./cluster.ts");
    const { natsConnect } = await import("../../src/runtime/nats-connect.ts");
    const { Wire } = await import("../../src/runtime/nats-wire.ts");
    const { decode, encode } = await import("../../src/runtime/codec.ts");
    const server = new NatsServer();
    await server.start();
    const [a, b] = await Promise.all([natsConnect(server.url, "a"), natsConnect(server.url, "b")]);
    try {
      const wa = new Wire(a, "moe.t"), wb = new Wire(b, "moe.t");
      b.subscribe("moe.t.echo", { queue: "q", callback: (_e, m) => void wb.unpack(m.data).then((d) => wb.respond(m, d)) });
      await b.flush();
      const x = Float32Array.from({ length: (3 << 20) / 4 }, (_, i) => i);
      expect(encode({ x }).byteLength).toBeGreaterThan(a.info!.max_payload);
      const back = decode(await wa.request("moe.t.echo", encode({ x }), 10_000)) as { x: Float32Array };
      expect(back.x).toEqual(x);
      wa.close();
      wb.close();
    } finally {
      await Promise.all([a.close(), b.close()]);
      await server.stop();
    }
  });

  test("worker refuses a node the scaling config does not name", async () => {
    const p = Bun.spawn([process.execPath, `${root}src/cli.ts`, "worker", "--model", MODEL, "--scaling", `${root}configs/scaling/nats-2-expert-nodes.yaml`, "--node", "nope"], { stderr: "pipe", stdout: "ignore" });
    expect(await p.exited).not.toBe(0);
    expect(await new Response(p.stderr).text()).toContain("places no actor on node:nope (its nodes: node:gateway, node:experts-a, node:experts-b)");
  });
});
