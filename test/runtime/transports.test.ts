// The same behaviour on every transport: the actors cannot tell where they run.
import { describe, expect, test } from "bun:test";
import { rejection, startSystem } from "./helpers.ts";

const LOCATIONS = ["inprocess", "worker:0", "process:0"] as const;

describe.each(LOCATIONS)("transport %s", (loc) => {
  const start = (opts = {}) => startSystem({ defaultLocation: loc, ...opts });

  test("actors run at the placed location", async () => {
    const sys = await start();
    const w = await sys.ask<{ location: string; pid: number; mainThread: boolean }>("echo/1", { type: "where" });
    expect(w.location).toBe(loc);
    expect(w.mainThread).toBe(loc !== "worker:0");
    expect(w.pid === process.pid).toBe(loc !== "process:0");
    expect(sys.locate("echo/1")).toBe(loc);
  });

  test("typed arrays and nested messages arrive intact both ways", async () => {
    const sys = await start();
    const msg = {
      type: "blob",
      f32: new Float32Array([1.5, -2.25, 3]),
      i32: new Int32Array([-7, 8]),
      u64: new BigUint64Array([2n ** 40n]),
      f64: new Float64Array([Math.E]),
      u16: new Uint16Array([65535]),
      u8: new Uint8Array([0, 1, 255]),
      nested: { list: [1, "two", null, { deep: new Int8Array([-1]) }] },
    };
    expect(await sys.ask("echo/1", msg)).toEqual(msg);
    const big = new Float32Array(1 << 20).fill(0.25); // 4 MB
    expect(await sys.ask("echo/1", { type: "sum", data: big })).toEqual({ sum: 1 << 18, length: 1 << 20 });
  });

  test("order of tells and asks from one sender is kept", async () => {
    const sys = await start();
    for (let i = 1; i <= 20; i++) sys.tell("counter/o", { type: "inc", by: i });
    expect(await sys.ask("counter/o", { type: "get" })).toBe(210);
    const replies = await Promise.all([20, 0, 10].map((ms, tag) => sys.ask<{ log: number[] }>("slow/o", { type: "sleep", ms, tag })));
    expect(replies[2]!.log).toEqual([0, 1, 2]);
  });

  test("handler throw: ActorError reply across the boundary, restart, next message works", async () => {
    const sys = await start();
    await sys.ask("counter/x", { type: "inc" });
    const restarted = sys.events.next((e) => e.type === "restarted" && e.actor === "counter/x#0");
    const err = await rejection(sys.ask("counter/x", { type: "boom" }));
    expect([err.name, err.code, err.actor]).toEqual(["ActorError", "handler", "counter/x#0"]);
    expect(err.message).toBe('counter/x#0 failed handling "boom": boom on demand');
    expect((await restarted).location).toBe(loc);
    expect(await sys.ask("counter/x", { type: "inc" })).toBe(1);
  });

  test("ask timeout", async () => {
    const sys = await start();
    const err = await rejection(sys.ask("slow/t", { type: "sleep", ms: 3000 }, { timeoutMs: 10 }));
    expect(err.code).toBe("timeout");
  });

  test("idle passivation and re-activation are reported from the host", async () => {
    const sys = await start({ idleTimeoutMs: { counter: 25 } });
    await sys.ask("counter/i", { type: "inc" });
    const p = await sys.events.next((e) => e.type === "passivated" && e.actor === "counter/i#0");
    expect(p.location).toBe(loc);
    const a = sys.events.next((e) => e.type === "activated" && e.actor === "counter/i#0");
    expect(await sys.ask("counter/i", { type: "get" })).toBe(0);
    expect((await a).location).toBe(loc);
  });
});

describe("actor-to-actor across hosts", () => {
  test("an actor asks actors in its own host, another worker, a process and the main thread", async () => {
    const sys = await startSystem({
      defaultLocation: "worker:0",
      placement: [
        { kind: "echo", key: "w1", location: "worker:1" },
        { kind: "echo", key: "p", location: "process:0" },
        { kind: "echo", key: "main", location: "inprocess" },
      ],
    });
    for (const [key, where] of [["local", "worker:0"], ["w1", "worker:1"], ["p", "process:0"], ["main", "inprocess"]]) {
      const r = await sys.ask<{ via: { location: string }; reply: { location: string } }>("relay/1", {
        type: "relay",
        to: `echo/${key}`,
        msg: { type: "where" },
      });
      expect([r.via.location, r.reply.location]).toEqual(["worker:0", where!]);
    }
    // The inner failure reaches the relay as an ActorError; rethrown, it fails the relay in turn.
    const err = await rejection(sys.ask("relay/1", { type: "relay", to: "counter/z", msg: { type: "boom" } }));
    expect([err.code, err.actor]).toEqual(["handler", "relay/1#0"]);
    expect(err.message).toBe('relay/1#0 failed handling "relay": counter/z#0 failed handling "boom": boom on demand');
  });
});
