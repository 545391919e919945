// Item 1 of issue 13, the runtime half: an actor that holds live state is never passivated for
// idleness (Actor.holdsState), and every activation has its own ctx.incarnation, so an actor can
// stamp its replies and a caller can tell when the state it relied on is gone.
import { describe, expect, test } from "bun:test";
import type { ActorSystem } from "../../src/runtime/index.ts";
import { startSystem } from "./helpers.ts";

interface Keeper { incarnation: string; live: number; declined: number; location: string }

/** Ask until `ok` holds (each ask also restarts the idle timer, which then fires again). */
async function askUntil(sys: ActorSystem, to: string, ok: (r: Keeper) => boolean, ms = 20_000): Promise<Keeper> {
  const end = Date.now() + ms;
  for (;;) {
    const r = await sys.ask<Keeper>(to, { type: "whoami" });
    if (ok(r)) return r;
    if (Date.now() > end) throw new Error(`${to}: condition not met within ${ms} ms (last: ${JSON.stringify(r)})`);
    await Bun.sleep(25);
  }
}

describe.each(["inprocess", "worker:0", "process:0"] as const)("live state on %s", (loc) => {
  test("an actor holding live state is not passivated by its idle timeout; released, it is", async () => {
    const sys = await startSystem({ defaultLocation: loc, idleTimeoutMs: { keeper: 5 } });
    const passivated: string[] = [];
    sys.events.on((e) => e.type === "passivated" && passivated.push(e.actor));
    const first = await sys.ask<Keeper>("keeper/k", { type: "hold" });
    // The idle timer fired (and was declined) several times; the state is the same activation's.
    const later = await askUntil(sys, "keeper/k", (r) => r.declined >= 3);
    expect([later.incarnation, later.live]).toEqual([first.incarnation, 1]);
    expect(passivated).toEqual([]);

    const gone = sys.events.next((e) => e.type === "passivated" && e.actor === "keeper/k#0");
    await sys.ask("keeper/k", { type: "release" });
    expect((await gone).location).toBe(loc);
    const again = await sys.ask<Keeper>("keeper/k", { type: "whoami" });
    expect(again.live).toBe(0);
    expect(again.incarnation).not.toBe(first.incarnation);
  }, 60_000);

  test("every activation has its own incarnation: after a failure, a passivation, a host restart", async () => {
    const sys = await startSystem({ defaultLocation: loc, idleTimeoutMs: { keeper: 20 } });
    const seen = new Set<string>();
    const who = async () => (await sys.ask<Keeper>("keeper/i", { type: "whoami" })).incarnation;
    const a = await who();
    expect(await sys.ask<Keeper>("keeper/i", { type: "hold" })).toMatchObject({ incarnation: a, live: 1 });
    seen.add(a);

    await sys.ask("keeper/i", { type: "boom" }).catch(() => {});
    // Re-activated with fresh state; holding again keeps this activation until the release.
    const b = (await sys.ask<Keeper>("keeper/i", { type: "hold" })).incarnation;
    expect(seen.has(b)).toBe(false);
    seen.add(b);

    const idle = sys.events.next((e) => e.type === "passivated" && e.actor === "keeper/i#0", 30_000);
    expect((await sys.ask<Keeper>("keeper/i", { type: "release" })).incarnation).toBe(b);
    await idle;
    const c = await who();
    expect(seen.has(c)).toBe(false);
    seen.add(c);

    if (loc === "inprocess") return; // a host restart needs a host of its own
    const back = sys.events.next((e) => e.type === "host_up" && e.restart);
    sys.killHost(loc);
    await back;
    const d = await who();
    expect(seen.has(d)).toBe(false);
    expect(typeof d === "string" && d.length > 0).toBe(true);
  }, 60_000);
});
