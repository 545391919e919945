// What `moe serve` logs besides requests: the engine's preemptions and step failures, and every
// runtime event of the actor system (activations, restarts, failures, hosts up and down, relocations
// to a fallback, passivations and whatever scaling events the runtime reports), each one line in the
// server's log format. Also routes stray console.error/console.warn lines (from modules that predate
// the logger) into it, so that with --log-format json stderr stays one JSON object per line.
import { formatWithOptions } from "node:util";
import type { EngineOptions } from "../engine/engine.ts";
import type { Preemption } from "../engine/types.ts";
import type { LogFields, LogLevel, Logger } from "../log.ts";
import type { EventLog, RuntimeEvent } from "../runtime/events.ts";
import { formatEvent } from "../runtime/events.ts";

/** The engine's log hooks: failures it lived through (warn) and preemptions (info, counted in /metrics). */
export function engineLogHooks(log: Logger): Pick<EngineOptions, "log" | "onPreempt"> {
  const engine = log.child({ component: "engine" });
  return {
    log: (msg) => engine.warn(msg, { event: "engine" }),
    onPreempt: (p: Preemption) =>
      engine.info(`preempted ${p.request_id} on replica ${p.replica}: KV cache full, ${p.computed_tokens} tokens to recompute`,
        { event: "preempted", request_id: p.request_id, replica: p.replica, computed_tokens: p.computed_tokens }, { brief: true }),
  };
}

const LEVELS: Partial<Record<string, LogLevel>> = { failed: "error", host_down: "warn", restarted: "warn", relocated: "warn" };

/** One line per runtime event, `type` its event name. Its `at` is left out: the line's ts is the
 * moment it is logged, which is `at` except for the start-up events replayed once serving. */
export function logRuntimeEvent(log: Logger, e: RuntimeEvent): void {
  const { type, at: _at, ...rest } = e as RuntimeEvent & Record<string, unknown>;
  const fields: LogFields = { event: type };
  for (const [k, v] of Object.entries(rest)) fields[k] = typeof v === "object" && v !== null ? JSON.stringify(v) : v as LogFields[string];
  // a kind the runtime gains later (a scaling event) is logged too, with its fields
  const msg = (formatEvent(e) as string | undefined) ?? `${type} ${JSON.stringify(rest)}`;
  log.log(LEVELS[type] ?? "info", msg, fields, { brief: true });
}

/** Logs what the system already reported (its start-up) and everything from now on; returns the
 * unsubscribe. A backend without an actor system (direct) has no events. */
export function logRuntimeEvents(log: Logger, backend: unknown): () => void {
  const events = (backend as { system?: { events?: EventLog } }).system?.events;
  if (!events) return () => {};
  const runtime = log.child({ component: "runtime" });
  for (const e of events.recent()) logRuntimeEvent(runtime, e);
  return events.on((e) => logRuntimeEvent(runtime, e));
}

/** console.error and console.warn go through the logger until the returned function restores them. */
export function routeConsole(log: Logger): () => void {
  const { error, warn } = console;
  const line = (args: unknown[]) => formatWithOptions({ colors: false }, ...args);
  console.error = (...args: unknown[]) => log.error(line(args));
  console.warn = (...args: unknown[]) => log.warn(line(args));
  return () => {
    console.error = error;
    console.warn = warn;
  };
}
