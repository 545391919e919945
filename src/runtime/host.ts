// A host: the actor cells of one location (the main thread, a Worker, a child process), plus the
// routing decision every send makes: a target placed here is delivered by reference; any other
// goes upstream to the system, which knows how to reach its location. The system may also deliver
// an actor placed elsewhere (re-activated here while its own host is lost): it is served the same.
//
//   LocalHost(init, registry, upstream, emit) { deliver(name, msg, reply?), activate(name, restarted),
//     passivate(name), tell(to, msg), ask(to, msg, opts?), stop() }
//   Upstream { tell(to, msg), ask(to, msg, timeoutMs, retry) }; askTimeout(name, msg, ms)
import {
  ActorError, type AskOptions, type Target, messageType, nameOf, parseId,
} from "./actor.ts";
import type { RuntimeEvent } from "./events.ts";
import type { HostInit } from "./frames.ts";
import { ActorCell, type CellContext, type ReplyFn } from "./mailbox.ts";
import { Placement } from "./placement.ts";
import type { Registry } from "./registry.ts";

export interface Upstream {
  tell(to: string, msg: unknown): void;
  ask(to: string, msg: unknown, timeoutMs: number, retry: boolean): Promise<unknown>;
}

export function askTimeout(name: string, msg: unknown, ms: number): ActorError {
  return new ActorError(`ask to ${name} ("${messageType(msg)}") timed out after ${ms} ms`, "timeout", name);
}

export class LocalHost {
  private readonly cells = new Map<string, ActorCell>();
  readonly placement: Placement;
  readonly location: string;

  constructor(
    private readonly init: HostInit,
    private readonly registry: Registry,
    private readonly upstream: Upstream,
    private readonly emit: (e: RuntimeEvent) => void,
  ) {
    this.placement = new Placement(init.placement);
    this.location = init.location;
  }

  /** Hand a message to a local actor, creating its cell on first use (virtual actor). */
  deliver(name: string, msg: unknown, reply?: ReplyFn): void {
    const cell = this.cell(name, reply);
    cell?.post(msg, reply);
  }

  activate(name: string, restarted: boolean): void {
    this.cell(name)?.activate(restarted);
  }

  /** Release an activation after what it has queued (a later message re-activates it). */
  passivate(name: string): void {
    void this.cells.get(name)?.passivate();
  }

  tell(to: Target, msg: unknown): void {
    const name = nameOf(to);
    if (this.placement.locate(name) === this.location) this.deliver(name, msg);
    else this.upstream.tell(name, msg);
  }

  ask<R = unknown>(to: Target, msg: unknown, opts?: AskOptions): Promise<R> {
    const name = nameOf(to);
    const ms = opts?.timeoutMs ?? this.init.askTimeoutMs;
    if (this.placement.locate(name) !== this.location) {
      return this.upstream.ask(name, msg, ms, opts?.retry ?? false) as Promise<R>;
    }
    return new Promise<R>((resolve, reject) => {
      const timer = Number.isFinite(ms) ? setTimeout(() => reject(askTimeout(name, msg, ms)), ms) : null;
      this.deliver(name, msg, (err, value) => {
        if (timer) clearTimeout(timer);
        if (err) reject(err);
        else resolve(value as R);
      });
    });
  }

  /** Passivate every activation (their passivate hooks release memory), in parallel. */
  async stop(): Promise<void> {
    await Promise.all([...this.cells.values()].map((c) => c.passivate()));
  }

  private cell(name: string, reply?: ReplyFn): ActorCell | undefined {
    const existing = this.cells.get(name);
    if (existing) return existing;
    let id;
    try {
      id = parseId(name);
    } catch (err) {
      reply?.(err as ActorError);
      return undefined;
    }
    const def = this.registry.get(id.kind);
    if (!def) {
      const known = [...this.registry.keys()].join(", ");
      reply?.(new ActorError(`${name}: unknown actor kind "${id.kind}" (known: ${known})`, "unknown_kind", name));
      return undefined;
    }
    const idle = this.init.idleTimeoutMs;
    const ctx: CellContext = {
      self: id,
      name,
      location: this.location,
      config: this.init.config,
      tell: (to, msg) => this.tell(to, msg),
      ask: (to, msg, opts) => this.ask(to, msg, opts),
    };
    const cell = new ActorCell(id, name, def, ctx, {
      location: this.location,
      idleTimeoutMs: idle[id.kind] ?? def.idleTimeoutMs ?? idle["*"] ?? Infinity,
      emit: this.emit,
    });
    this.cells.set(name, cell);
    return cell;
  }
}
