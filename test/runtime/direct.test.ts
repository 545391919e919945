// Direct channels between Worker hosts (issue 14, fewer hops): an ask from one Worker to an
// actor placed on another takes the MessagePort between them, never a port to a host that is
// down or to where the actor is not: when the peer dies, asks in flight there are sent again
// through the system (retry) or fail host_down (no retry) within their deadline; while the
// home is lost asks follow the system to the fallback; when it is back they go direct again.
import { afterEach, expect, test } from "bun:test";
import type { ActorSystem } from "../../src/runtime/index.ts";
import { startSystem } from "./helpers.ts";

const KINDS = new URL("./direct-kinds.ts", import.meta.url).pathname;
type Hop = { ok: boolean; reply?: { location: string; log?: number[] }; code?: string; before: { sent: number; resent: number }; after: { sent: number; resent: number } };

const saved = process.env.MOE_DIRECT_CHANNELS;
afterEach(() => {
  if (saved === undefined) delete process.env.MOE_DIRECT_CHANNELS;
  else process.env.MOE_DIRECT_CHANNELS = saved;
});

async function hostReady(sys: ActorSystem, location: string, ms = 30_000): Promise<void> {
  for (const end = Date.now() + ms; sys.hosts().find((h) => h.location === location)?.status !== "ready";) {
    if (Date.now() > end) throw new Error(`${location} not ready within ${ms} ms`);
    await Bun.sleep(10);
  }
}

const system = () => startSystem({
  registry: { module: KINDS },
  defaultLocation: "worker:0",
  placement: [
    { kind: "echo", location: "worker:1", fallback: ["worker:2"] },
    { kind: "slow", location: "worker:1", fallback: ["worker:2"] },
  ],
  fallback: ["worker:2"],
});
const hop = (sys: ActorSystem, to: string, msg: unknown, o: { retry?: boolean; timeoutMs?: number } = {}) =>
  sys.ask<Hop>("hop/a", { type: "hop", to, msg, ...o }, { timeoutMs: 30_000 });

test("a worker's ask to an actor on another worker takes the direct channel, and only with it on", async () => {
  const sys = await system();
  const r = await hop(sys, "echo/x", { type: "where" });
  expect(r.ok).toBe(true);
  expect(r.reply!.location).toBe("worker:1");
  expect(r.after.sent - r.before.sent).toBe(1);
  await sys.stop(500);

  process.env.MOE_DIRECT_CHANNELS = "0";
  const off = await system();
  const s = await hop(off, "echo/x", { type: "where" });
  expect(s.reply!.location).toBe("worker:1");
  expect(s.after.sent).toBe(0);
}, 60_000);

test("the peer dies with a direct ask in flight: a retry goes through the system to the fallback, then home again direct", async () => {
  const sys = await system();
  await hop(sys, "echo/x", { type: "where" }); // both hosts up, the channel in use
  await hostReady(sys, "worker:2"); // a fallback-only host: start-up does not wait for it
  const busy = sys.events.next((e) => e.type === "activated" && e.actor === "slow/f#0" && e.location === "worker:1");
  const asked = hop(sys, "slow/f", { type: "sleep", ms: 60_000, tag: 1, at: "worker:1" }, { retry: true, timeoutMs: 20_000 });
  await busy;
  const back = sys.events.next((e) => e.type === "host_up" && e.location === "worker:1" && e.restart);
  sys.killHost("worker:1", "direct channel test");
  const r = await asked;
  expect(r.ok).toBe(true);
  expect(r.reply!.location).toBe("worker:2"); // the fallback, never the dead host
  expect(r.after.sent - r.before.sent).toBe(1);
  expect(r.after.resent - r.before.resent).toBe(1);

  // While worker:1 is lost asks follow the system; once it is back they go home, direct.
  await back;
  await hostReady(sys, "worker:1");
  for (const end = Date.now() + 20_000; ;) {
    const h = await hop(sys, "echo/x", { type: "where" });
    expect(h.ok).toBe(true);
    if (h.after.sent > h.before.sent) {
      expect(h.reply!.location).toBe("worker:1");
      break;
    }
    expect(["worker:1", "worker:2"]).toContain(h.reply!.location);
    if (Date.now() > end) throw new Error("asks never went direct to the restarted host");
    await Bun.sleep(10);
  }
}, 90_000);

test("the peer dies with a direct ask in flight that allows no retry: host_down, within its deadline", async () => {
  const sys = await system();
  await hop(sys, "echo/x", { type: "where" });
  const busy = sys.events.next((e) => e.type === "activated" && e.actor === "slow/g#0" && e.location === "worker:1");
  const asked = hop(sys, "slow/g", { type: "sleep", ms: 60_000, at: "worker:1" }, { timeoutMs: 20_000 });
  await busy;
  sys.killHost("worker:1", "direct channel test");
  const r = await asked;
  expect(r.ok).toBe(false);
  expect(r.code).toBe("host_down");
  expect(r.after.sent - r.before.sent).toBe(1);
}, 60_000);

test("a direct ask past its deadline times out as one through the system would", async () => {
  const sys = await system();
  const r = await hop(sys, "slow/h", { type: "sleep", ms: 3000, at: "worker:1" }, { timeoutMs: 50 });
  expect(r.ok).toBe(false);
  expect(r.code).toBe("timeout");
  expect(r.after.sent - r.before.sent).toBe(1);
}, 60_000);

test("the asker dies with a direct ask in flight: the callee's late reply goes nowhere and its host lives on", async () => {
  const sys = await system();
  await hop(sys, "echo/x", { type: "where" });
  const busy = sys.events.next((e) => e.type === "activated" && e.actor === "slow/k#0" && e.location === "worker:1");
  const asked = hop(sys, "slow/k", { type: "sleep", ms: 300 });
  await busy;
  sys.killHost("worker:0", "direct channel test");
  await asked.catch(() => {}); // the asker's host died: its own asker hears host_down
  // worker:1's mailbox is serial: this ask is answered after the first one's reply went into the
  // port whose other end died, and the host still serves
  const r = await sys.ask<{ log: number[]; location: string }>("slow/k", { type: "sleep", ms: 0 }, { timeoutMs: 10_000 });
  expect(r.location).toBe("worker:1");
  expect(sys.hosts().find((h) => h.location === "worker:1")?.status).toBe("ready");
}, 60_000);
