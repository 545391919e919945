// Item 2 of issue 13, the runtime half: a lost host does not hang its actors' asks. Its actors are
// re-activated at the first fallback location whose host is up (a "relocated" event), in-flight
// asks that allow a retry go there at once, new asks follow, and when the host is ready again new
// asks go home. When no host can take an actor, asks end "unavailable" by their deadline.
import { describe, expect, test } from "bun:test";
import type { ActorSystem } from "../../src/runtime/index.ts";
import { FlakyTransport } from "./flaky-transport.ts";
import { rejection, startSystem } from "./helpers.ts";

type Sleep = { actor: string; location: string; log: number[] };
type Where = { location: string };

/** Start-up does not wait for fallback-only hosts: wait here until `location` is ready. */
async function hostReady(sys: ActorSystem, location: string, ms = 30_000): Promise<void> {
  for (const end = Date.now() + ms; sys.hosts().find((h) => h.location === location)?.status !== "ready";) {
    if (Date.now() > end) throw new Error(`${location} not ready within ${ms} ms`);
    await Bun.sleep(10);
  }
}

describe.each(["worker", "process"] as const)("fallback with %s hosts", (scheme) => {
  const home = `${scheme}:1`, spare = `${scheme}:0`;

  test("in-flight asks with retry re-activate on the fallback at once; back home once it is up, the copy freed", async () => {
    const sys = await startSystem({
      defaultLocation: spare,
      placement: [{ kind: "slow", location: home, fallback: [spare] }],
    });
    const busy = sys.events.next((e) => e.type === "activated" && e.actor === "slow/f#0");
    const asked = sys.ask<Sleep>("slow/f", { type: "sleep", ms: 60_000, tag: 1, at: home }, { retry: true });
    await busy; // in the handler on its home host
    const moved = sys.events.next((e) => e.type === "relocated" && e.actor === "slow/f#0");
    const homeUp = sys.events.next((e) => e.type === "host_up" && e.location === home && e.restart);
    const movedBack = sys.events.next((e) => e.type === "relocated" && e.actor === "slow/f#0" && e.location === home);
    const copyFreed = sys.events.next((e) => e.type === "passivated" && e.actor === "slow/f#0" && e.location === spare);
    sys.killHost(home, "chaos test");

    // Served by a fresh activation on the fallback (the log is that activation's own).
    expect(await asked).toEqual({ actor: "slow/f#0", location: spare, log: [1] });
    const m = await moved;
    expect(m.type === "relocated" && [m.from, m.location]).toEqual([home, spare]);
    await homeUp;
    await movedBack;
    await copyFreed; // the copy on the fallback is released: nobody will ask it again
    expect(sys.routeOf("slow/f")).toBe(home);
    expect((await sys.ask<Sleep>("slow/f", { type: "sleep", ms: 0 })).location).toBe(home);
  }, 60_000);

  test("an actor's own ask (host to host) with retry is re-activated on the fallback", async () => {
    const sys = await startSystem({
      defaultLocation: spare,
      placement: [{ kind: "slow", location: home, fallback: [spare] }],
    });
    const busy = sys.events.next((e) => e.type === "activated" && e.actor === "slow/a#0");
    const asked = sys.ask<{ via: Where; reply: Sleep }>("relay/1", { type: "relay", to: "slow/a", msg: { type: "sleep", ms: 60_000, at: home }, retry: true });
    await busy;
    sys.killHost(home);
    const r = await asked;
    expect([r.via.location, r.reply.location]).toEqual([spare, spare]);
  }, 60_000);
});

describe.each(["worker", "process"] as const)("a host that cannot come back (%s)", (kind) => {
  test("its actors keep working on the fallback; isReachable and hosts() say where", async () => {
    const flaky = new FlakyTransport(kind);
    const sys = await startSystem({
      defaultLocation: "worker:0",
      placement: [{ kind: "echo", location: "flaky:1" }],
      fallback: ["worker:0"],
      transports: [flaky],
    });
    expect((await sys.ask<Where>("echo/x", { type: "where" })).location).toBe("flaky:1");
    flaky.broken.add("flaky:1");
    sys.killHost("flaky:1", "machine lost");
    for (let i = 0; i < 3; i++) expect((await sys.ask<Where>("echo/x", { type: "where" })).location).toBe("worker:0");
    expect(sys.isReachable("echo/x")).toBe(true);
    expect(sys.routeOf("echo/x")).toBe("worker:0");
    const hosts = Object.fromEntries(sys.hosts().map((h) => [h.location, h]));
    expect(hosts["flaky:1"]).toMatchObject({ lost: true });
    expect(hosts["flaky:1"]!.status).not.toBe("ready");
    expect(hosts["worker:0"]).toMatchObject({ status: "ready", lost: false, actors: ["echo/x#0"] });
  }, 60_000);

  test("no host can take the actor: asks end 'unavailable' by their deadline, never hang", async () => {
    const flaky = new FlakyTransport(kind);
    const sys = await startSystem({
      defaultLocation: "worker:0",
      placement: [{ kind: "slow", location: "flaky:1", fallback: ["flaky:2"] }],
      transports: [flaky],
    });
    const busy = sys.events.next((e) => e.type === "activated" && e.actor === "slow/n#0");
    // Deadlines long enough that the kill comes first even on a loaded machine.
    const inFlight = sys.ask("slow/n", { type: "sleep", ms: 60_000 }, { retry: true, timeoutMs: 8000 });
    await busy;
    flaky.broken.add("flaky:1");
    flaky.broken.add("flaky:2");
    sys.killHost("flaky:2");
    sys.killHost("flaky:1");
    const fresh = sys.ask("slow/n", { type: "sleep", ms: 0 }, { timeoutMs: 1000 });
    for (const err of await Promise.all([rejection(inFlight), rejection(fresh)])) {
      expect([err.code, err.actor]).toEqual(["unavailable", "slow/n#0"]);
      expect(err.message).toMatch(/^slow\/n#0: no host could take "sleep" within \d+ ms \(flaky:1 is \w+; fallback flaky:2 not ready\)$/);
    }
    expect(sys.isReachable("slow/n")).toBe(false);
    expect(sys.isReachable("echo/elsewhere")).toBe(true);
  }, 60_000);

  test("a retried ask keeps its original deadline: the fallback gets what is left of it", async () => {
    const flaky = new FlakyTransport(kind);
    const sys = await startSystem({
      defaultLocation: "worker:0",
      placement: [{ kind: "slow", location: "flaky:1", fallback: ["flaky:2"] }],
      transports: [flaky],
    });
    await hostReady(sys, "flaky:2");
    const busy = sys.events.next((e) => e.type === "activated" && e.actor === "slow/d#0");
    const asked = sys.ask<Sleep>("slow/d", { type: "sleep", ms: 60_000, at: "flaky:1" }, { retry: true, timeoutMs: 20_000 });
    await busy;
    sys.killHost("flaky:1");
    expect((await asked).location).toBe("flaky:2");
    const sent = flaky.asks.filter((a) => a.to === "slow/d#0");
    expect(sent.map((a) => a.location)).toEqual(["flaky:1", "flaky:2"]);
    expect(sent[0]!.timeoutMs).toBeLessThanOrEqual(20_000);
    expect(sent[1]!.timeoutMs).toBeLessThan(sent[0]!.timeoutMs!); // the clock was not started again
  }, 60_000);

  test("a fallback that is not up does not hold up start-up", async () => {
    const flaky = new FlakyTransport(kind);
    flaky.broken.add("flaky:9");
    const sys = await startSystem({ defaultLocation: "worker:0", fallback: ["flaky:9"], transports: [flaky] });
    expect((await sys.ask<Where>("echo/s", { type: "where" })).location).toBe("worker:0");
    expect(sys.hosts().find((h) => h.location === "flaky:9")?.status).not.toBe("ready");
  }, 60_000);
});
