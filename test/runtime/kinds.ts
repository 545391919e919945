// Tiny actor kinds for the runtime tests. They run in whatever host the test places them in
// (main thread, Worker, child process), so they report where they are and what they saw.
import { isMainThread } from "node:worker_threads";
import { type ActorContext, defineActor, defineRegistry } from "../../src/runtime/index.ts";

// Per-host bookkeeping: a restarted host starts from zero, as its actors do.
const activations = new Map<string, number>();
const passivations = new Map<string, number>();

function where(ctx: ActorContext) {
  return { location: ctx.location, pid: process.pid, mainThread: isMainThread };
}

type CounterMsg =
  | { type: "inc"; by?: number }
  | { type: "get" }
  | { type: "boom" }
  | { type: "exit"; code: number }
  | { type: "stats" };

export const counter = defineActor({
  kind: "counter",
  activate(ctx) {
    activations.set(ctx.name, (activations.get(ctx.name) ?? 0) + 1);
    return { n: 0 };
  },
  handle(state, msg: CounterMsg, ctx) {
    switch (msg.type) {
      case "inc":
        state.n += msg.by ?? 1;
        return state.n;
      case "get":
        return state.n;
      case "boom":
        throw new Error("boom on demand");
      case "exit":
        // Never take the test runner down with the in-process host.
        if (ctx.location === "inprocess") throw new Error("exit refused in-process");
        process.exit(msg.code);
      case "stats":
        return { activations: activations.get(ctx.name) ?? 0, passivations: passivations.get(ctx.name) ?? 0, ...where(ctx) };
    }
  },
  passivate(_state, ctx) {
    passivations.set(ctx.name, (passivations.get(ctx.name) ?? 0) + 1);
  },
});

export const echo = defineActor({
  kind: "echo",
  activate: () => ({ seen: 0 }),
  handle(state, msg: unknown, ctx) {
    state.seen++;
    const m = msg as { type?: string; data?: Float32Array };
    if (m.type === "where") return where(ctx);
    if (m.type === "sum" && m.data) {
      let s = 0;
      for (const x of m.data) s += x;
      return { sum: s, length: m.data.length };
    }
    return msg;
  },
});

export const slow = defineActor({
  kind: "slow",
  activate: () => ({ log: [] as number[] }),
  // `at`: sleep only there (a message that hangs on one host and is quick on any other).
  async handle(state, msg: { type: "sleep"; ms: number; tag?: number; at?: string }, ctx) {
    if (msg.at === undefined || msg.at === ctx.location) await Bun.sleep(msg.ms);
    if (msg.tag !== undefined) state.log.push(msg.tag);
    return { log: state.log.slice(), actor: ctx.name, location: ctx.location };
  },
});

/** Forwards to another actor: checks actor-to-actor asks between (and within) hosts. */
export const relay = defineActor({
  kind: "relay",
  activate: () => ({}),
  async handle(_s, msg: { type: "relay"; to: string; msg: unknown; retry?: boolean }, ctx) {
    const reply = await ctx.ask(msg.to, msg.msg, { retry: msg.retry });
    return { via: where(ctx), reply };
  },
});

/** activate throws for key "bad": activation failures are reported, not spun on. */
export const fragile = defineActor({
  kind: "fragile",
  activate(ctx) {
    if (ctx.self.key === "bad") throw new Error("cannot load weights");
    return { config: ctx.config };
  },
  handle: (state) => state.config,
});

type KeeperMsg = { type: "hold" } | { type: "release" } | { type: "whoami" } | { type: "boom" };

/**
 * Holds live state (like KV pages of unfinished sequences) between "hold" and "release": its
 * holdsState hook keeps the idle timeout from passivating it, and counts how often it was asked.
 */
export const keeper = defineActor({
  kind: "keeper",
  activate: () => ({ live: 0, declined: 0 }),
  handle(state, msg: KeeperMsg, ctx) {
    if (msg.type === "boom") throw new Error("boom on demand");
    if (msg.type === "hold") state.live++;
    if (msg.type === "release") state.live = 0;
    return { incarnation: ctx.incarnation, live: state.live, declined: state.declined, location: ctx.location };
  },
  holdsState(state) {
    if (state.live > 0) state.declined++;
    return state.live > 0;
  },
});

export const registry = defineRegistry(counter, echo, slow, relay, fragile, keeper);

/** A factory export: kinds that need the system config to set themselves up. */
export function registryFromConfig(config: unknown) {
  if (!(config as { ok?: boolean } | null)?.ok) throw new Error("config.ok is required");
  return [echo];
}
