// The link protocol between the system (main thread) and a host (in-process, Worker, child
// process, or a remote node). Transports carry Frames and nothing else; what a frame means is
// decided here and in host-proxy.ts / serve-host.ts, so a new transport never touches it.
//
// A frame names data, never code: the actor registry a host runs is fixed when the host starts
// (HostSpec in transport.ts), so no frame can make a host import a module. Every frame that
// crossed a thread, process or network boundary is checked here before anything acts on it:
//
//   checkFrame(value, "host" | "system") -> Frame | {invalid}   (what a host / the system may receive)
//   decodeFrame(bytes, side) -> Frame | {invalid}; isBad(f); logDropped(from, bad)
//
// Cheap on the hot path: a "req" or "rep" is checked as an envelope (tag, id, target); the
// message or value it carries (tensors) is the actor's protocol's business, not the link's.
import { z } from "zod";
import type { ErrorInfo } from "./actor.ts";
import { decode } from "./codec.ts";
import type { RuntimeEvent } from "./events.ts";
import type { PlacementSpec } from "./placement.ts";

export interface HostInit {
  readonly location: string;
  readonly placement: PlacementSpec;
  readonly config: unknown;
  /** Per kind; "*" is the default for kinds not named. Missing: the kind's own, else never. */
  readonly idleTimeoutMs: Readonly<Record<string, number>>;
  readonly askTimeoutMs: number;
}

/** Every variant (and every HostInit field) has a schema below; the compiler checks that it does. */
export type Frame =
  | { t: "init"; init: HostInit } // system -> host, first frame
  | { t: "ready"; ms: number } // host -> system: registry loaded
  | { t: "fatal"; error: string } // host -> system: cannot serve (e.g. the registry failed to load)
  // either way; id 0 is a tell. A host sends one for a target placed elsewhere.
  | { t: "req"; id: number; to: string; msg: unknown; timeoutMs?: number; retry?: boolean }
  | { t: "rep"; id: number; value?: unknown; error?: ErrorInfo }
  // system -> host (supervisor). passivate: a copy re-activated at a fallback whose home is back.
  | { t: "ctl"; op: "activate" | "passivate"; to: string; restarted: boolean }
  | { t: "ev"; event: RuntimeEvent } // host -> system
  | { t: "stop" } // system -> host: passivate everything, then answer stopped
  | { t: "stopped" };

/** Which end receives the frame: a host (or node) hears from the system, the system from hosts. */
export type Side = "host" | "system";

const id = z.number().int().nonnegative();
const name = z.string().min(1).max(512);
const ms = z.number().nonnegative(); // Infinity allowed: "never"

// Placement may grow fields (fallbacks): checked for what a host reads, the rest kept as sent.
const placement = z.looseObject({
  rules: z.array(z.looseObject({
    kind: z.string().optional(), key: z.string().optional(), replica: id.optional(), location: name,
  })),
  defaultLocation: name,
  replicas: z.record(z.string(), id).optional(),
});

// Strict: an init that carries anything else (a `registry` module, say) is refused, not ignored.
const hostInit = z.strictObject({
  location: name,
  placement,
  config: z.unknown().optional(),
  idleTimeoutMs: z.record(z.string(), ms),
  askTimeoutMs: ms,
});

const errorInfo = z.looseObject({
  message: z.string(),
  code: z.enum(["handler", "activate", "timeout", "host_down", "unknown_kind", "bad_id", "stopped", "unavailable", "unreachable"]),
  actor: z.string().optional(),
  stack: z.string().optional(),
});

const req = z.strictObject({
  t: z.literal("req"), id, to: name, msg: z.unknown().optional(), timeoutMs: ms.optional(), retry: z.boolean().optional(),
});
const rep = z.strictObject({ t: z.literal("rep"), id, value: z.unknown().optional(), error: errorInfo.optional() });

const actorEvent = { actor: name, location: name, at: z.number() };
// Only the events a host emits about its own actors; host_up/host_down are the system's to say.
const event = z.discriminatedUnion("type", [
  z.looseObject({ type: z.literal("activated"), ...actorEvent, ms }),
  z.looseObject({ type: z.literal("restarted"), ...actorEvent, ms, cause: z.string() }),
  z.looseObject({ type: z.literal("passivated"), ...actorEvent, ms, idleMs: ms }),
  z.looseObject({
    type: z.literal("failed"), ...actorEvent, phase: z.enum(["activate", "handle", "passivate"]), error: z.string(),
    msgType: z.string().optional(),
  }),
]);

const toHost = z.discriminatedUnion("t", [
  z.strictObject({ t: z.literal("init"), init: hostInit }),
  req,
  rep,
  z.strictObject({ t: z.literal("ctl"), op: z.enum(["activate", "passivate"]), to: name, restarted: z.boolean() }),
  z.strictObject({ t: z.literal("stop") }),
]);

const toSystem = z.discriminatedUnion("t", [
  // A node's answer to init also names its incarnation.
  z.strictObject({ t: z.literal("ready"), ms, inc: z.string().optional() }),
  z.strictObject({ t: z.literal("fatal"), error: z.string() }),
  req,
  rep,
  z.strictObject({ t: z.literal("ev"), event }),
  z.strictObject({ t: z.literal("stopped") }),
]);

// A frame or an init field added above without a schema here fails to compile (instead of
// every such frame being dropped at run time): the name of what is missing is the error.
type Unchecked = Exclude<Frame["t"], z.infer<typeof toHost>["t"] | z.infer<typeof toSystem>["t"]>;
type UncheckedInit = Exclude<keyof HostInit, keyof z.infer<typeof hostInit>>;
const everyFrameChecked: [Unchecked, UncheckedInit] extends [never, never] ? true : [Unchecked, UncheckedInit] = true;
void everyFrameChecked;

/** Why a value is not a frame (a field no frame has, so a "fatal" frame is never mistaken for one). */
export interface BadFrame {
  readonly invalid: string;
}

/**
 * The frame itself when it is one `side` may receive (no copy: the payload keeps its tensors
 * in place), else why not. Never throws.
 */
export function checkFrame(value: unknown, side: Side): Frame | BadFrame {
  const r = (side === "host" ? toHost : toSystem).safeParse(value);
  if (r.success) return value as Frame;
  const tag = typeof value === "object" && value !== null && "t" in value ? String((value as { t: unknown }).t).slice(0, 16) : typeof value;
  const first = r.error.issues[0];
  return { invalid: `invalid "${tag}" frame: ${first ? `${first.path.join(".") || "frame"}: ${first.message}` : "malformed"}` };
}

export function decodeFrame(bytes: Uint8Array, side: Side): Frame | BadFrame {
  let value: unknown;
  try {
    value = decode(bytes);
  } catch (err) {
    return { invalid: `undecodable frame: ${(err as Error)?.message ?? String(err)}` };
  }
  return checkFrame(value, side);
}

export function isBad(f: Frame | BadFrame): f is BadFrame {
  return "invalid" in f;
}

/** The one log line for a dropped frame: who sent it and why it was refused (never its payload). */
export function logDropped(from: string, bad: BadFrame): void {
  console.error(`[frames] dropped a frame from ${from}: ${bad.invalid}`);
}
