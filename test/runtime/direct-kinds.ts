// Test kinds for direct channels between Worker hosts: "hop" asks another actor from inside a
// Worker and reports that Worker's direct-channel counts (src/runtime/direct.ts).
import { defineActor, defineRegistry } from "../../src/runtime/index.ts";
import { DIRECT_STATS } from "../../src/runtime/direct.ts";
import { echo, slow } from "./kinds.ts";

export const hop = defineActor({
  kind: "hop",
  activate: () => ({}),
  async handle(_s, msg: { type: "hop"; to: string; msg: unknown; retry?: boolean; timeoutMs?: number }, ctx) {
    const stats = () => ({ ...((globalThis as Record<symbol, unknown>)[DIRECT_STATS] as object) }) as { sent: number; resent: number };
    const before = stats();
    try {
      const reply = await ctx.ask(msg.to, msg.msg, { retry: msg.retry, timeoutMs: msg.timeoutMs });
      return { ok: true, reply, before, after: stats(), location: ctx.location };
    } catch (err) {
      const e = err as Error & { code?: string };
      return { ok: false, error: e.message, code: e.code, before, after: stats(), location: ctx.location };
    }
  },
});

export const registry = defineRegistry(hop, echo, slow);
