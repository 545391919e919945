// What an actor is, to the runtime: an identity, a definition (a handler over its own state) and the
// context it talks to other actors through. The runtime knows no actor kind; kinds arrive in a
// Registry that a module exports (see registry.ts).
//
//   ActorId {kind, key, replica}; actorId(kind, key?, replica?); idString(id) -> "expert/3#1";
//   parseId("expert/3#1"); nameOf(target)
//   Actor<State, Msg, Reply> { kind, idleTimeoutMs?, activate(ctx), handle(state, msg, ctx),
//     passivate?(state, ctx), holdsState?(state) }; defineActor(def)
//   ActorContext { self, name, location, incarnation, config, tell(to, msg), ask(to, msg, opts?) }
//   AskOptions { timeoutMs?, retry? }
//   ActorError (code, actor) with toInfo()/fromInfo() to cross transports; messageType(msg)

/** Who an actor is. Replicas of the same kind+key are interchangeable (a retry may pick another). */
export interface ActorId {
  readonly kind: string;
  readonly key: string;
  readonly replica: number;
}

/** An actor addressed by id or by its string form ("expert/3#1"; "#0" may be left off). */
export type Target = ActorId | string;

export function actorId(kind: string, key: string | number = "0", replica = 0): ActorId {
  return Object.freeze({ kind, key: String(key), replica });
}

export function idString(id: ActorId): string {
  return `${id.kind}/${id.key}#${id.replica}`;
}

const ID_RE = /^([^/#\s]+)\/([^#\s]+)(?:#(\d+))?$/;

export function parseId(name: string): ActorId {
  const m = ID_RE.exec(name);
  if (!m) throw new ActorError(`"${name}" is not an actor id (expected kind/key#replica)`, "bad_id");
  return actorId(m[1]!, m[2]!, m[3] === undefined ? 0 : Number(m[3]));
}

/** The canonical string form of a target: messages, placement and events all use it. */
export function nameOf(target: Target): string {
  if (typeof target !== "string") return idString(target);
  return target.includes("#") ? target : `${target}#0`;
}

export interface AskOptions {
  /** Reject with an ActorError (code "timeout") after this long. Default: the system's. */
  timeoutMs?: number;
  /** The message is idempotent: if the actor's host dies, resend it to another replica. */
  retry?: boolean;
}

/** What a handler sees besides its state. Addresses are identities; where they run is not its concern. */
export interface ActorContext {
  readonly self: ActorId;
  readonly name: string;
  /** Where this activation runs ("inprocess", "worker:0", ...): for logs, never for routing. */
  readonly location: string;
  /**
   * This activation's identity, new on every activation (after a passivation, a failure, a host
   * restart or a relocation): an actor stamps its replies with it so a caller can tell that the
   * state it relied on (a KV cache) is gone.
   */
  readonly incarnation: string;
  /** The system's `config` (plain data), e.g. a checkpoint path the kinds need. */
  readonly config: unknown;
  tell(to: Target, msg: unknown): void;
  ask<R = unknown>(to: Target, msg: unknown, opts?: AskOptions): Promise<R>;
}

/**
 * An actor kind. `activate` builds the state on the first message (and after a failure or
 * passivation); `handle` serves one message at a time and may mutate the state; `passivate`
 * releases it (after an idle timeout, a failure, or at stop). A throw from `handle` becomes an
 * error reply to the asker and marks the activation failed; the mailbox survives.
 */
export interface Actor<State = unknown, Msg = unknown, Reply = unknown> {
  readonly kind: string;
  /** Idle time after which the actor is passivated; the system's setting for the kind wins. */
  readonly idleTimeoutMs?: number;
  activate(ctx: ActorContext): State | Promise<State>;
  handle(state: State, msg: Msg, ctx: ActorContext): Reply | Promise<Reply>;
  passivate?(state: State, ctx: ActorContext): void | Promise<void>;
  /**
   * True while the state holds something that cannot be rebuilt by re-activating (KV pages of
   * unfinished sequences): the idle timeout then leaves the actor active and looks again later.
   * A throw counts as true: keeping memory is cheaper than losing state.
   */
  holdsState?(state: State): boolean;
}

/** Identity function that lets TypeScript infer State/Msg/Reply from the handlers. */
export function defineActor<State, Msg, Reply>(def: Actor<State, Msg, Reply>): Actor<State, Msg, Reply> {
  return def;
}

export type ErrorCode =
  | "handler" // the handler threw
  | "activate" // activate threw
  | "timeout" // no reply within the ask timeout
  | "host_down" // the worker/process hosting the actor died with the message in flight
  | "unknown_kind" // no kind of that name in the registry
  | "bad_id"
  | "stopped" // the system is stopping or stopped
  | "unavailable" // no host (placed or fallback) could take the actor before the ask's deadline
  | "unreachable"; // the host could not start (e.g. the registry module failed to load)

/** Plain-data form of an ActorError, as it travels in a reply frame. */
export interface ErrorInfo {
  message: string;
  code: ErrorCode;
  actor?: string;
  stack?: string;
}

export class ActorError extends Error {
  constructor(
    message: string,
    readonly code: ErrorCode,
    readonly actor?: string,
  ) {
    super(message);
    this.name = "ActorError";
  }

  toInfo(): ErrorInfo {
    return { message: this.message, code: this.code, actor: this.actor, stack: this.stack };
  }

  static fromInfo(info: ErrorInfo): ActorError {
    const e = new ActorError(info.message, info.code, info.actor);
    // Keep the remote stack: it says where the handler threw, which the local one cannot.
    if (info.stack) e.stack = `${info.stack}\n    at (received from ${info.actor ?? "remote"})`;
    return e;
  }
}

/** The tag of a plain tagged message, for error texts and events. */
export function messageType(msg: unknown): string {
  if (msg && typeof msg === "object" && "type" in msg) return String((msg as { type: unknown }).type);
  return typeof msg;
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
