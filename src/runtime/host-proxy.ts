// The system's side of one location: its Link, the asks in flight to it, and its lifecycle
// (starting -> ready -> down -> starting ... ; broken if it cannot load the registry; stopped).
// It is the same for every transport. When the host dies it tells the system which actors it
// held (so they can be re-activated on a fallback), fails or hands back for retry what was in
// flight, restarts the host, and re-activates the actors that were active there once it is back.
//
//   ProxyOwner { emit, onEvent, route, retry, lost, resend }; HostProxy(location, transport,
//     init, owner) { status, lost, ready, active, info(), ask(p), tell(to, msg), reply(gen, frame),
//     activate(name, restarted), passivate(name), kill(reason), stop(graceMs) }
import { ActorError, type ErrorInfo, messageType } from "./actor.ts";
import type { RuntimeEvent } from "./events.ts";
import type { Frame, HostInit } from "./frames.ts";
import type { PendingAsk } from "./pending-ask.ts";
import type { HostOpener, Link } from "./transport.ts";

export type { PendingAsk };

export interface ProxyOwner {
  emit(e: RuntimeEvent): void;
  onEvent(e: RuntimeEvent, from: HostProxy): void;
  /** A send from an actor on this host to one placed elsewhere. */
  route(from: HostProxy, generation: number, f: Extract<Frame, { t: "req" }>): void;
  /** An ask that was in flight when this host died, whose asker allowed a retry. */
  retry(p: PendingAsk, deadLocation: string): void;
  /** The host died holding these active actors; called before its in-flight asks are retried. */
  lost(from: HostProxy, actors: readonly string[]): void;
  /** A send that never reached the host (it was restarting): route it again, as if new. */
  resend(to: string, msg: unknown, p: PendingAsk | undefined): void;
}

export type ProxyStatus = "starting" | "ready" | "down" | "broken" | "stopped";

/** One location as /health and /v1/cluster show it. */
export interface HostInfo {
  location: string;
  status: ProxyStatus;
  /** Died or broken and not back yet: its actors run at their fallbacks meanwhile. */
  lost: boolean;
  /** Actors active there. */
  actors: string[];
}

const MAX_BACKOFF_MS = 2000;

export class HostProxy {
  status: ProxyStatus = "starting";
  /** Died or broken, and not ready since: the system routes its actors to fallbacks meanwhile. */
  lost = false;
  /** Actors active on the host, from its events: the ones a restart brings back. */
  readonly active = new Set<string>();
  /** Bumped on every (re)start: replies meant for a previous incarnation are dropped. */
  generation = 0;
  readonly ready: Promise<void>;
  private link: Link | null = null;
  private pending = new Map<number, PendingAsk>();
  private queue: Frame[] = [];
  private nextId = 1;
  private openedAt = 0;
  private readyAt = 0;
  private fastFailures = 0;
  private fatal: string | null = null;
  /** What the current start is to re-activate: kept when a restart dies before it is ready. */
  private reactivating: string[] = [];
  private settleReady!: { resolve(): void; reject(e: Error): void };
  private onStopped: (() => void) | null = null;

  constructor(
    readonly location: string,
    private readonly transport: HostOpener,
    private readonly init: HostInit,
    private readonly owner: ProxyOwner,
  ) {
    this.ready = new Promise((resolve, reject) => (this.settleReady = { resolve, reject }));
    this.ready.catch(() => {}); // observed by ActorSystem.start; unhandled here is not an error
    this.open([]);
  }

  /** Asks sent here and not answered yet: a host being drained stops once this is 0. */
  get inFlight(): number {
    return this.pending.size;
  }

  info(): HostInfo {
    return { location: this.location, status: this.status, lost: this.lost, actors: [...this.active].sort() };
  }

  ask(p: PendingAsk): void {
    if (this.fatal !== null) return p.reject(new ActorError(`${p.to}: ${this.fatal}`, "unreachable", p.to));
    if (this.status === "stopped") return p.reject(stoppedError(p.to));
    const id = this.nextId++;
    this.pending.set(id, p);
    p.cancel = () => {
      this.pending.delete(id);
      // Not sent yet (the host is restarting): it must not run after its asker gave up.
      if (this.queue.length) this.queue = this.queue.filter((f) => f.t !== "req" || f.id !== id);
    };
    // What is left of the original deadline: a retry does not start the clock again.
    const left = p.deadline - performance.now();
    const timeoutMs = Number.isFinite(left) ? Math.max(1, Math.ceil(left)) : undefined;
    this.send({ t: "req", id, to: p.to, msg: p.msg, timeoutMs });
  }

  tell(to: string, msg: unknown): void {
    if (this.fatal === null && this.status !== "stopped") this.send({ t: "req", id: 0, to, msg });
  }

  /** Answer a host-originated ask, unless the host that asked has died since. */
  reply(generation: number, id: number, value: unknown, error?: ErrorInfo): void {
    if (generation !== this.generation || this.status !== "ready") return;
    this.send(error ? { t: "rep", id, error } : { t: "rep", id, value });
  }

  activate(name: string, restarted: boolean): void {
    if (this.status === "ready" || this.status === "starting") this.send({ t: "ctl", op: "activate", to: name, restarted });
  }

  /** Release an actor here, whatever it holds: its messages go elsewhere now. */
  passivate(name: string): void {
    if (this.status === "ready") this.send({ t: "ctl", op: "passivate", to: name, restarted: false });
  }

  /** Crash the host on purpose (chaos tests): the same path as a real death. */
  kill(reason = "killed by request"): void {
    this.link?.kill(reason);
  }

  async stop(graceMs: number): Promise<void> {
    const wasReady = this.status === "ready";
    this.status = "stopped";
    if (wasReady && this.link) {
      const stopped = new Promise<void>((r) => (this.onStopped = r));
      this.link.send({ t: "stop" });
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([stopped, new Promise((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
    }
    this.link?.close();
    this.link = null;
    this.failPending((p) => stoppedError(p.to));
  }

  private send(f: Frame): void {
    if (this.status === "ready") this.link!.send(f);
    else this.queue.push(f);
  }

  private open(reactivate: string[]): void {
    this.reactivating = reactivate;
    const restart = this.generation > 0;
    this.generation++;
    this.status = "starting";
    this.openedAt = performance.now();
    const link = this.transport.open(this.location);
    this.link = link;
    link.onFrame((f) => this.onFrame(f, reactivate, restart));
    link.onExit((reason) => this.onExit(link, reason));
    link.send({ t: "init", init: this.init });
  }

  private onFrame(f: Frame, reactivate: string[], restart: boolean): void {
    switch (f.t) {
      case "ready": {
        this.status = "ready";
        this.lost = false;
        this.readyAt = performance.now();
        const ms = this.readyAt - this.openedAt;
        this.owner.emit({ type: "host_up", location: this.location, ms, restart, at: Date.now() });
        for (const name of reactivate) this.link!.send({ t: "ctl", op: "activate", to: name, restarted: true });
        for (const q of this.queue.splice(0)) this.link!.send(q);
        this.settleReady.resolve();
        return;
      }
      case "rep": {
        const p = this.pending.get(f.id);
        if (!p) return;
        this.pending.delete(f.id);
        if (f.error) p.reject(ActorError.fromInfo(f.error));
        else p.resolve(f.value);
        return;
      }
      case "req":
        return this.owner.route(this, this.generation, f);
      case "ev":
        return this.owner.onEvent(f.event, this);
      case "stopped":
        return this.onStopped?.();
      case "fatal":
        this.fatal = f.error;
        this.status = "broken";
        this.lost = true;
        this.queue = [];
        this.failPending((p) => new ActorError(`${p.to}: ${f.error}`, "unreachable", p.to));
        this.settleReady.reject(new Error(f.error));
        this.link?.close();
        return;
    }
  }

  private onExit(link: Link, reason: string): void {
    if (link !== this.link || this.status === "stopped" || this.status === "broken") return;
    // Queued sends never reached this host (it was restarting): they are not lost with it.
    const unsent = this.queue.filter((f): f is Extract<Frame, { t: "req" }> => f.t === "req");
    const waiting = new Map(unsent.map((f) => [f, this.pending.get(f.id)]));
    for (const f of unsent) this.pending.delete(f.id);
    const inFlight = [...this.pending.values()];
    this.pending.clear();
    this.queue = [];
    const wasReady = this.readyAt >= this.openedAt;
    this.status = "down";
    this.lost = true;
    this.owner.emit({ type: "host_down", location: this.location, reason, inFlight: inFlight.length, at: Date.now() });
    const reactivate = [...new Set([...(wasReady ? [] : this.reactivating), ...this.active])];
    this.active.clear();
    this.owner.lost(this, reactivate);
    for (const p of inFlight) {
      if (p.settled) continue;
      if (p.retry) this.owner.retry(p, this.location);
      else p.reject(hostDown(p, this.location, reason));
    }
    // In their original order, to a fallback if one is up, else back into this queue.
    for (const [f, p] of waiting) if (f.id === 0 || (p && !p.settled)) this.owner.resend(f.to, f.msg, p);
    // A host that keeps dying right after start gets an exponential back-off, not a spin.
    const quick = !wasReady || performance.now() - this.readyAt < 1000;
    this.fastFailures = quick ? this.fastFailures + 1 : 0;
    const delay = this.fastFailures <= 1 ? 0 : Math.min(MAX_BACKOFF_MS, 50 * 2 ** this.fastFailures);
    setTimeout(() => this.status === "down" && this.open(reactivate), delay);
  }

  private failPending(err: (p: PendingAsk) => ActorError): void {
    for (const p of this.pending.values()) if (!p.settled) p.reject(err(p));
    this.pending.clear();
  }
}

export function stoppedError(to: string): ActorError {
  return new ActorError(`${to}: the actor system is stopped`, "stopped", to);
}

function hostDown(p: PendingAsk, location: string, reason: string): ActorError {
  const what = `"${messageType(p.msg)}"`;
  return new ActorError(`${p.to}: ${location} died (${reason}) with ${what} in flight`, "host_down", p.to);
}
