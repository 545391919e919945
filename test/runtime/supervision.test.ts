// Hosts that die: in-flight asks fail clearly (or are retried on a replica), the supervisor
// restarts the host and the actors that were active there, and the next ask succeeds.
import { describe, expect, test } from "bun:test";
import { formatEvent } from "../../src/runtime/index.ts";
import { rejection, startSystem } from "./helpers.ts";

describe.each(["worker:0", "process:0"] as const)("host death on %s", (loc) => {
  test("killed mid-flight: the ask fails clearly, the host restarts, the next ask succeeds", async () => {
    const sys = await startSystem({ defaultLocation: loc });
    await sys.ask("counter/k", { type: "inc", by: 41 });
    const busy = sys.events.next((e) => e.type === "activated" && e.actor === "slow/k#0");
    const inFlight = sys.ask("slow/k", { type: "sleep", ms: 5000 });
    await busy; // the message is in the handler now
    const down = sys.events.next((e) => e.type === "host_down");
    const up = sys.events.next((e) => e.type === "host_up" && e.restart);
    const back = sys.events.next((e) => e.type === "restarted" && e.actor === "counter/k#0");
    sys.killHost(loc, "chaos test");

    const err = await rejection(inFlight);
    expect([err.code, err.actor]).toEqual(["host_down", "slow/k#0"]);
    expect(err.message).toBe(`slow/k#0: ${loc} died (chaos test) with "sleep" in flight`);
    const d = await down;
    expect(d.type === "host_down" && [d.location, d.inFlight]).toEqual([loc, 1]);
    expect(formatEvent(d)).toBe(`${loc} died (chaos test) with 1 message(s) in flight`);
    expect((await up).location).toBe(loc);
    // The supervisor brought back what was active there (with fresh state).
    expect((await back).location).toBe(loc);
    expect(await sys.ask("counter/k", { type: "inc" })).toBe(1);
    expect((await sys.ask<{ log: number[] }>("slow/k", { type: "sleep", ms: 0, tag: 1 })).log).toEqual([1]);
  });

  test("a host that exits by itself (process.exit in a handler) is restarted the same way", async () => {
    const sys = await startSystem({ defaultLocation: loc });
    const err = await rejection(sys.ask("counter/e", { type: "exit", code: 3 }));
    expect(err.code).toBe("host_down");
    expect(err.message).toBe(`counter/e#0: ${loc} died (exited with code 3) with "exit" in flight`);
    expect(await sys.ask("counter/e", { type: "inc" })).toBe(1); // queued until the host is back
  });

  test("messages sent while the host restarts wait for it", async () => {
    const sys = await startSystem({ defaultLocation: loc });
    await sys.ask("counter/w", { type: "get" });
    sys.killHost(loc);
    sys.tell("counter/w", { type: "inc", by: 2 });
    expect(await sys.ask("counter/w", { type: "inc" })).toBe(3);
  });
});

describe("retry on a replica", () => {
  test("with retry: true an in-flight ask moves to another replica when its host dies", async () => {
    const sys = await startSystem({
      placement: [
        { kind: "slow", replica: 0, location: "worker:0" },
        { kind: "slow", replica: 1, location: "process:0" },
      ],
      replicas: { slow: 2 },
    });
    const busy = sys.events.next((e) => e.type === "activated" && e.actor === "slow/r#0");
    const asked = sys.ask<{ actor: string; location: string }>("slow/r", { type: "sleep", ms: 400 }, { retry: true });
    await busy;
    sys.killHost("worker:0");
    const r = await asked;
    expect([r.actor, r.location]).toEqual(["slow/r#1", "process:0"]);
  });

  test("with retry: true and one replica, the ask waits for the restart and is resent", async () => {
    const sys = await startSystem({ defaultLocation: "worker:0" });
    const busy = sys.events.next((e) => e.type === "activated" && e.actor === "slow/s#0");
    const asked = sys.ask<{ actor: string; location: string; log: number[] }>("slow/s", { type: "sleep", ms: 300, tag: 5 }, { retry: true });
    await busy;
    sys.killHost("worker:0");
    expect(await asked).toEqual({ actor: "slow/s#0", location: "worker:0", log: [5] });
  });

  test("an actor's own ask with retry survives the death of the callee's host", async () => {
    const sys = await startSystem({
      placement: [
        { kind: "slow", replica: 0, location: "worker:1" },
        { kind: "slow", replica: 1, location: "worker:2" },
      ],
      replicas: { slow: 2 },
      defaultLocation: "worker:0",
    });
    const busy = sys.events.next((e) => e.type === "activated" && e.actor === "slow/a#0");
    const asked = sys.ask<{ reply: { actor: string } }>("relay/1", {
      type: "relay",
      to: "slow/a",
      msg: { type: "sleep", ms: 400 },
      retry: true,
    });
    await busy;
    sys.killHost("worker:1");
    expect((await asked).reply.actor).toBe("slow/a#1");
  });
});
