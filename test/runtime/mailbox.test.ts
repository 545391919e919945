// Actor semantics on the in-process host: serial mailbox, asks, failures, virtual lifecycle.
import { describe, expect, test } from "bun:test";
import { ActorSystem, actorId, formatEvent } from "../../src/runtime/index.ts";
import { KINDS, rejection, startSystem } from "./helpers.ts";

describe("mailbox and lifecycle (in-process)", () => {
  test("tells and asks to one actor are handled one at a time, in order", async () => {
    const sys = await startSystem();
    for (let i = 0; i < 5; i++) sys.tell("counter/a", { type: "inc", by: 10 });
    expect(await sys.ask("counter/a", { type: "get" })).toBe(50);
    // Slow handlers do not interleave: the log shows the send order, not the sleep lengths.
    const replies = await Promise.all([30, 1, 15, 0].map((ms, tag) => sys.ask<{ log: number[] }>("slow/1", { type: "sleep", ms, tag })));
    expect(replies.map((r) => r.log)).toEqual([[0], [0, 1], [0, 1, 2], [0, 1, 2, 3]]);
  });

  test("addresses by identity: an ActorId and its string form reach the same actor", async () => {
    const sys = await startSystem();
    await sys.ask(actorId("counter", 7), { type: "inc" });
    expect(await sys.ask("counter/7#0", { type: "get" })).toBe(1);
    expect(await sys.ask("counter/7", { type: "get" })).toBe(1);
    expect(await sys.ask("counter/7#1", { type: "get" })).toBe(0); // another replica, another actor
  });

  test("in-process messages travel by reference", async () => {
    const sys = await startSystem();
    const msg = { type: "ping", payload: new Float32Array(4) };
    expect(await sys.ask("echo/1", msg)).toBe(msg);
  });

  test("an ask that outlives its timeout fails with a clear error, and the actor goes on", async () => {
    const sys = await startSystem();
    const err = await rejection(sys.ask("slow/1", { type: "sleep", ms: 3000 }, { timeoutMs: 20 }));
    expect(err.name).toBe("ActorError");
    expect(err.code).toBe("timeout");
    expect(err.message).toBe('ask to slow/1#0 ("sleep") timed out after 20 ms');
    expect((await sys.ask<{ log: number[] }>("slow/1", { type: "sleep", ms: 0, tag: 9 })).log).toEqual([9]);
  });

  test("a throwing handler: error reply, failed + restarted events, the next message works", async () => {
    const sys = await startSystem();
    await sys.ask("counter/c", { type: "inc", by: 5 });
    const restarted = sys.events.next((e) => e.type === "restarted" && e.actor === "counter/c#0");
    const err = await rejection(sys.ask("counter/c", { type: "boom" }));
    expect(err.code).toBe("handler");
    expect(err.actor).toBe("counter/c#0");
    expect(err.message).toBe('counter/c#0 failed handling "boom": boom on demand');
    const ev = await restarted; // the supervisor re-activated it without waiting for a message
    expect(ev.type === "restarted" && ev.cause).toBe("boom on demand");
    const failed = sys.events.recent().find((e) => e.type === "failed");
    expect(failed && formatEvent(failed)).toBe('counter/c#0 failed on inprocess in handle of "boom": boom on demand');
    // Fresh state after the restart, and the mailbox still serves.
    expect(await sys.ask("counter/c", { type: "inc" })).toBe(1);
    const stats = await sys.ask<{ activations: number; passivations: number }>("counter/c", { type: "stats" });
    expect(stats.activations).toBe(2);
    expect(stats.passivations).toBe(1); // the failed state was released through the hook
  });

  test("a tell whose handler throws is reported as a failure event", async () => {
    const sys = await startSystem();
    const failed = sys.events.next((e) => e.type === "failed");
    sys.tell("counter/t", { type: "boom" });
    const ev = await failed;
    expect(ev.type === "failed" && [ev.actor, ev.phase, ev.msgType]).toEqual(["counter/t#0", "handle", "boom"]);
  });

  test("an idle actor is passivated and comes back on the next message, with its activation time", async () => {
    const sys = await startSystem({ idleTimeoutMs: { counter: 30 } });
    const activated = sys.events.next((e) => e.type === "activated" && e.actor === "counter/p#0");
    await sys.ask("counter/p", { type: "inc", by: 3 });
    const first = await activated;
    expect(first.type === "activated" && first.ms).toBeGreaterThanOrEqual(0);
    const passivated = await sys.events.next((e) => e.type === "passivated" && e.actor === "counter/p#0");
    expect(passivated.type === "passivated" && passivated.idleMs).toBeGreaterThan(0);
    const again = sys.events.next((e) => e.type === "activated" && e.actor === "counter/p#0");
    expect(await sys.ask("counter/p", { type: "get" })).toBe(0); // state was released
    const second = await again;
    expect(second.type === "activated" && typeof second.ms).toBe("number");
    expect(formatEvent(second)).toMatch(/^counter\/p#0 activated on inprocess in \d+\.\d ms$/);
    const stats = await sys.ask<{ activations: number; passivations: number }>("counter/p", { type: "stats" });
    expect([stats.activations, stats.passivations]).toEqual([2, 1]);
  });

  test("kinds without an idle timeout stay active", async () => {
    const sys = await startSystem({ idleTimeoutMs: { counter: 10 } });
    await sys.ask("echo/1", { type: "x" });
    const passivated = sys.events.next((e) => e.type === "passivated" && e.actor === "counter/q#0");
    await sys.ask("counter/q", { type: "inc" });
    await passivated;
    await Bun.sleep(20);
    expect(sys.events.recent().some((e) => e.type === "passivated" && e.actor === "echo/1#0")).toBe(false);
  });

  test("an unknown kind and a bad id are refused by name", async () => {
    const sys = await startSystem();
    const err = await rejection(sys.ask("nosuch/1", { type: "x" }));
    expect(err.code).toBe("unknown_kind");
    expect(err.message).toBe('nosuch/1#0: unknown actor kind "nosuch" (known: counter, echo, slow, relay, fragile, keeper)');
    expect((await rejection(sys.ask("not an id", {}))).code).toBe("bad_id");
  });

  test("a failing activation is reported and retried by the next message, not in a loop", async () => {
    const sys = await startSystem({ config: { model: "tiny" } });
    const err = await rejection(sys.ask("fragile/bad", { type: "x" }));
    expect(err.code).toBe("activate");
    expect(err.message).toBe("fragile/bad#0 failed to activate: cannot load weights");
    expect((await rejection(sys.ask("fragile/bad", { type: "x" }))).code).toBe("activate");
    expect(sys.events.recent().filter((e) => e.type === "failed").length).toBe(2);
    expect(await sys.ask("fragile/good", { type: "x" })).toEqual({ model: "tiny" }); // ctx.config
  });

  test("a registry export may be a factory of the system config; a bad registry fails start-up", async () => {
    const sys = await startSystem({ registry: { module: KINDS, export: "registryFromConfig" }, config: { ok: true } });
    expect(await sys.ask("echo/1", { type: "x", v: 1 })).toEqual({ type: "x", v: 1 });
    const bad = await rejection(ActorSystem.start({ registry: { module: KINDS, export: "registryFromConfig" }, config: {} }));
    expect(bad.message).toContain("config.ok is required");
    const missing = await rejection(ActorSystem.start({ registry: { module: KINDS, export: "nope" } }));
    expect(missing.message).toContain('has no export "nope"');
  });

  test("after stop, asks fail with a stopped error", async () => {
    const sys = await startSystem();
    await sys.ask("counter/s", { type: "inc" });
    await sys.stop();
    expect((await rejection(sys.ask("counter/s", { type: "get" }))).code).toBe("stopped");
    expect(sys.events.recent().some((e) => e.type === "passivated" && e.actor === "counter/s#0")).toBe(true);
  });
});
