// The autoscaler: an autoscaled kind's actors move onto hosts started by backlog and back to their
// base when the hosts are drained and stopped; no ask fails while hosts come and go.
import { expect, test } from "bun:test";
import type { AutoscaleKind } from "../../src/runtime/autoscaler.ts";
import type { RuntimeEvent } from "../../src/runtime/index.ts";
import { startSystem } from "./helpers.ts";

const SLOW: AutoscaleKind = {
  min_replicas: 0, max_replicas: 2, target_backlog: 2, scale_down_after_ms: 200,
  base: "inprocess", hosts: ["worker:1", "worker:2"], keys: ["0", "1", "2", "3"],
};
type Reply = { location: string };
const scaledTo = (n: number) => (e: RuntimeEvent) => e.type === "scaled" && e.kind === "slow" && e.replicas === n;

test("backlog starts hosts, the actors move onto them, idle hosts drain back to min_replicas", async () => {
  const sys = await startSystem({ autoscale: { slow: SLOW } });
  const up = sys.events.next(scaledTo(2), 60_000);
  let scaled = false;
  up.then(() => (scaled = true), () => {});
  const seen = new Set<string>();
  let failures = 0;
  // 8 clients keep asks in flight (backlog 8 > 2 x target) until both hosts serve, and a round after.
  const client = async (c: number) => {
    for (let round = 0; round < 1; ) {
      const after = scaled; // asked once both hosts serve
      const r = await sys.ask<Reply>(`slow/${c % 4}`, { type: "sleep", ms: 30 }).catch(() => (failures++, null));
      if (r && after) seen.add(r.location);
      if (after) round++;
    }
  };
  await Promise.all(Array.from({ length: 8 }, (_, c) => client(c)));
  await up;
  expect(sys.scaler!.replicas("slow")).toBe(2);
  // After the step up, every actor's asks went to the hosts: both served some.
  expect([...seen].sort()).toEqual(["worker:1", "worker:2"]);
  await sys.events.next(scaledTo(0), 60_000);
  expect(sys.scaler!.replicas("slow")).toBe(0);
  expect(sys.locations()).not.toContain("worker:1");
  expect(sys.locations()).not.toContain("worker:2");
  // Back at its base: the next ask is served there (a cold start), not failed.
  expect((await sys.ask<Reply>("slow/1", { type: "sleep", ms: 1 })).location).toBe("inprocess");
  expect(failures).toBe(0);
  const moves = sys.events.recent().filter((e) => e.type === "relocated" && e.reason === "scaled");
  expect(moves.length).toBeGreaterThan(0);
}, 120_000);

test("a host being scaled down finishes the asks in flight on it before it stops", async () => {
  const sys = await startSystem({ autoscale: { slow: { ...SLOW, max_replicas: 1, hosts: ["worker:1"] } } });
  let demand = 2;
  sys.scaler!.demandFrom(() => demand);
  await sys.events.next(scaledTo(1), 60_000);
  // Held on the host until the scale-down has begun: the drain must wait for it.
  const held = sys.ask<Reply>("slow/0", { type: "sleep", ms: 1500, at: "worker:1" });
  while (sys.hosts().find((h) => h.location === "worker:1")?.actors.length !== 1) await Bun.sleep(5);
  demand = 0;
  await sys.events.next(scaledTo(0), 60_000);
  expect(sys.locations()).toContain("worker:1"); // draining: still there
  expect((await held).location).toBe("worker:1");
  const deadline = Date.now() + 30_000;
  while (sys.locations().includes("worker:1") && Date.now() < deadline) await Bun.sleep(10);
  expect(sys.locations()).not.toContain("worker:1");
}, 120_000);

test("the external scaler publishes the backlog and starts no host", async () => {
  const sys = await startSystem({ autoscale: { slow: SLOW }, scaler: "external" });
  expect(sys.scaler!.mode).toBe("external");
  const asks = Array.from({ length: 6 }, (_, i) => sys.ask<Reply>(`slow/${i % 4}`, { type: "sleep", ms: 300 }));
  expect(sys.scaler!.backlog("slow")).toBe(6);
  const replies = await Promise.all(asks);
  expect(new Set(replies.map((r) => r.location))).toEqual(new Set(["inprocess"]));
  expect(sys.scaler!.backlog("slow")).toBe(0);
  expect(sys.scaler!.replicas("slow")).toBe(0);
  expect(sys.locations()).toEqual(["inprocess"]);
}, 60_000);

test("a scaled host that dies: its actors' asks go to the base meanwhile and back once it is up", async () => {
  const sys = await startSystem({ autoscale: { slow: { ...SLOW, max_replicas: 1, hosts: ["worker:1"] } } });
  sys.scaler!.demandFrom(() => 2);
  await sys.events.next(scaledTo(1), 60_000);
  expect((await sys.ask<Reply>("slow/2", { type: "sleep", ms: 1 })).location).toBe("worker:1");
  const back = sys.events.next((e) => e.type === "host_up" && e.location === "worker:1" && e.restart, 60_000);
  const down = sys.events.next((e) => e.type === "host_down" && e.location === "worker:1", 60_000);
  sys.killHost("worker:1", "chaos");
  await down;
  expect(sys.scaler!.replicas("slow")).toBe(0);
  expect((await sys.ask<Reply>("slow/2", { type: "sleep", ms: 1 })).location).toBe("inprocess");
  await back;
  expect(sys.scaler!.replicas("slow")).toBe(1);
  expect((await sys.ask<Reply>("slow/2", { type: "sleep", ms: 1 })).location).toBe("worker:1");
}, 120_000);
