// One actor activation and its serial mailbox: messages are handled one at a time by an awaited
// loop, in arrival order. The cell owns the virtual-actor lifecycle of its actor inside one host:
// activate on the first message, passivate after the idle timeout (unless the actor says it holds
// live state), drop the state on a failure and come back (as "restarted") on the next message or a
// supervisor's activate. Every activation gets a fresh ctx.incarnation.
//
//   ActorCell(id, name, def, ctx, hooks) { post(msg, reply?), activate(restarted), passivate(),
//     status, queued }; CellContext (the ActorContext less its per-activation incarnation)
//   ReplyFn = (err: ActorError | null, value?) => void
import { type Actor, type ActorContext, type ActorId, ActorError, errorText, messageType } from "./actor.ts";
import type { RuntimeEvent } from "./events.ts";

/** What the host gives a cell; the cell adds the incarnation of each activation. */
export type CellContext = Omit<ActorContext, "incarnation">;

export type ReplyFn = (err: ActorError | null, value?: unknown) => void;

export interface CellHooks {
  readonly location: string;
  /** Infinity: never passivate for idleness. */
  readonly idleTimeoutMs: number;
  emit(e: RuntimeEvent): void;
}

type Envelope =
  | { op: "msg"; msg: unknown; reply: ReplyFn | undefined }
  | { op: "activate"; restarted: boolean }
  | { op: "passivate"; idle: boolean };

export type CellStatus = "inactive" | "active" | "failed";

export class ActorCell {
  private queue: (Envelope | undefined)[] = [];
  private head = 0;
  private running = false;
  private state: unknown = undefined;
  private active = false;
  private lastFailure: string | null = null;
  private idleTimer: ReturnType<typeof setTimeout> | null = null;
  private lastActive = performance.now();
  private ctx: ActorContext;

  constructor(
    readonly id: ActorId,
    readonly name: string,
    private readonly def: Actor<any, any, any>,
    private readonly base: CellContext,
    private readonly hooks: CellHooks,
  ) {
    this.ctx = { ...base, incarnation: "" };
  }

  get status(): CellStatus {
    return this.active ? "active" : this.lastFailure !== null ? "failed" : "inactive";
  }

  get queued(): number {
    return this.queue.length - this.head;
  }

  post(msg: unknown, reply?: ReplyFn): void {
    this.enqueue({ op: "msg", msg, reply });
  }

  /** Supervisor restart (or warm-up): activate now rather than on the next message. */
  activate(restarted = false): void {
    this.enqueue({ op: "activate", restarted });
  }

  /** Release the state after what is already queued; resolves when the cell is idle again. */
  passivate(): Promise<void> {
    this.enqueue({ op: "passivate", idle: false });
    return this.idle();
  }

  private idleWaiters: (() => void)[] = [];
  private idle(): Promise<void> {
    return this.running ? new Promise((r) => this.idleWaiters.push(r)) : Promise.resolve();
  }

  private enqueue(env: Envelope): void {
    this.queue.push(env);
    if (!this.running) void this.drain();
  }

  private async drain(): Promise<void> {
    this.running = true;
    this.clearIdleTimer();
    let worked = false; // a declined idle passivation is no activity: idleMs keeps counting
    while (this.head < this.queue.length) {
      const env = this.queue[this.head]!;
      this.queue[this.head++] = undefined;
      if (env.op === "passivate") {
        // Idle but holding live state: stay active; the idle timer looks again after the drain.
        if (env.idle && this.active && this.holdsState()) continue;
        worked = true;
        if (this.active) await this.release(env.idle ? "idle" : "stop");
        continue;
      }
      worked = true;
      if (!this.active && !(await this.start(env))) continue;
      if (env.op === "msg") await this.handle(env.msg, env.reply);
    }
    this.queue = [];
    this.head = 0;
    this.running = false;
    if (worked) this.lastActive = performance.now();
    this.armIdleTimer();
    for (const w of this.idleWaiters.splice(0)) w();
  }

  private async start(env: Envelope): Promise<boolean> {
    const t0 = performance.now();
    const restarted = this.lastFailure !== null || (env.op === "activate" && env.restarted);
    this.ctx = Object.freeze({ ...this.base, incarnation: crypto.randomUUID() });
    try {
      this.state = await this.def.activate(this.ctx);
    } catch (err) {
      const e = new ActorError(`${this.name} failed to activate: ${errorText(err)}`, "activate", this.name);
      this.fail("activate", err, env.op === "msg" ? messageType(env.msg) : undefined);
      if (env.op === "msg") env.reply?.(e);
      return false;
    }
    this.active = true;
    const ms = performance.now() - t0;
    const base = { actor: this.name, location: this.hooks.location, ms, at: Date.now() };
    if (restarted) {
      this.hooks.emit({ type: "restarted", ...base, cause: this.lastFailure ?? "host restart" });
    } else this.hooks.emit({ type: "activated", ...base });
    this.lastFailure = null;
    return true;
  }

  private async handle(msg: unknown, reply: ReplyFn | undefined): Promise<void> {
    try {
      let r = this.def.handle(this.state, msg, this.ctx);
      if (r instanceof Promise) r = await r;
      reply?.(null, r);
    } catch (err) {
      const type = messageType(msg);
      const e = new ActorError(`${this.name} failed handling "${type}": ${errorText(err)}`, "handler", this.name);
      if (err instanceof Error && err.stack) e.stack = err.stack;
      reply?.(e);
      this.fail("handle", err, type);
      // The state may be half-updated: release it; the next message (or the supervisor) re-activates.
      await this.release(null);
    }
  }

  private fail(phase: "activate" | "handle" | "passivate", err: unknown, msgType?: string): void {
    this.lastFailure = errorText(err);
    const at = Date.now();
    this.hooks.emit({ type: "failed", actor: this.name, location: this.hooks.location, phase, error: this.lastFailure, msgType, at });
  }

  /** Drop the state through the passivate hook; reason null = after a failure (no event). */
  private async release(reason: "idle" | "stop" | null): Promise<void> {
    const t0 = performance.now();
    const idleMs = t0 - this.lastActive;
    const state = this.state;
    this.state = undefined;
    this.active = false;
    try {
      await this.def.passivate?.(state, this.ctx);
    } catch (err) {
      if (reason !== null) this.fail("passivate", err);
      return;
    }
    if (reason === null) return;
    const ms = performance.now() - t0;
    this.hooks.emit({ type: "passivated", actor: this.name, location: this.hooks.location, ms, idleMs, at: Date.now() });
  }

  private holdsState(): boolean {
    if (!this.def.holdsState) return false;
    try {
      return Boolean(this.def.holdsState(this.state));
    } catch {
      return true; // cannot tell: keeping memory is cheaper than losing state
    }
  }

  private armIdleTimer(): void {
    const ms = this.hooks.idleTimeoutMs;
    if (!this.active || !Number.isFinite(ms) || this.queue.length > 0) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      this.enqueue({ op: "passivate", idle: true });
    }, ms);
    // An idle actor must not keep the process (or worker) alive by itself.
    (this.idleTimer as { unref?: () => void }).unref?.();
  }

  private clearIdleTimer(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }
}
