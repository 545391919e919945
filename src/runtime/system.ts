// The actor system: the one place that knows every location. Callers (engine, CLI, tests) tell and
// ask actors by identity; the system finds the location in the placement table, starts a host
// there through the transport of that scheme, and supervises: an actor whose handler throws is
// re-activated at once; a host that dies is restarted, what was in flight to it fails with a
// clear error or, for asks made with {retry: true}, goes to another replica of the same kind+key,
// or to the same actor re-activated at a fallback location (locator.ts) while its host is lost.
// Every ask ends by its deadline, kept across retries: a timeout, or "unavailable" when no host
// could take the actor meanwhile.
//
//   ActorSystem.start(options): Promise<ActorSystem>
//   system.tell(to, msg); system.ask<R>(to, msg, {timeoutMs?, retry?}): Promise<R>
//   system.events: EventLog (activated, restarted, passivated, failed, host_up, host_down, relocated, scaled)
//   system.scaler: the autoscaled kinds' hosts (replicas, backlog), null without options.autoscale
//   system.locate(to) (placed); system.routeOf(to) (now); system.isReachable(to); system.hosts()
//   system.locations(); system.killHost(location, reason?); system.stop(graceMs?)
//   SystemOptions: see below.
import { ActorError, type AskOptions, type Target, errorText, messageType, nameOf, parseId } from "./actor.ts";
import { type AutoscaleKind, type Scaler, type ScalerHosts, createScaler } from "./autoscaler.ts";
import { EventLog, type RuntimeEvent } from "./events.ts";
import type { HostInit } from "./frames.ts";
import { askTimeout } from "./host.ts";
import { type HostInfo, HostProxy, type ProxyOwner, stoppedError } from "./host-proxy.ts";
import { Locator } from "./locator.ts";
import { type PendingAsk, pendingAsk } from "./pending-ask.ts";
import { Placement, type PlacementRule, SCALED, schemeOf } from "./placement.ts";
import { type RegistryRef, resolveRegistryRef } from "./registry.ts";
import { type Transport, bindHost, defaultTransports } from "./transport.ts";

export interface SystemOptions {
  /** The module every host imports its actor kinds from (see registry.ts). */
  readonly registry: RegistryRef;
  /** First match wins; unmatched actors go to defaultLocation. */
  readonly placement?: readonly PlacementRule[];
  /** Default "inprocess". */
  readonly defaultLocation?: string;
  /**
   * Where actors whose rule names no fallback may be re-activated while their host is lost, in
   * order (the first one ready wins). Default none: their messages wait for the host.
   */
  readonly fallback?: readonly string[];
  /** Interchangeable replicas per "kind" or "kind/key" (default 1), for retries. */
  readonly replicas?: Readonly<Record<string, number>>;
  /** One value for every kind, or per kind ("*" = the rest). Default: the kind's own, else never. */
  readonly idleTimeoutMs?: number | Readonly<Record<string, number>>;
  /** Default ask timeout (ms). Default 30 000. */
  readonly askTimeoutMs?: number;
  /** Plain data handed to every host: the registry factory and ctx.config see it. */
  readonly config?: unknown;
  /** Added to (and by scheme replacing) inprocess, worker and process. */
  readonly transports?: readonly Transport[];
  readonly eventLogSize?: number;
  /** Kinds whose actors move over hosts started and stopped by load (autoscaler.ts). */
  readonly autoscale?: Readonly<Record<string, AutoscaleKind>>;
  /** local (default): start and stop hosts here; external: only publish the demand. */
  readonly scaler?: "local" | "external";
}

const MAX_ATTEMPTS = 4;

export class ActorSystem {
  readonly events: EventLog;
  private readonly placement: Placement;
  private readonly locator: Locator;
  private readonly proxies = new Map<string, HostProxy>();
  private readonly transports = new Map<string, Transport>();
  private readonly askTimeoutMs: number;
  private stopping = false;
  private readonly owner: ProxyOwner;
  /** Autoscaled kinds' hosts (absent with no autoscale option). */
  readonly scaler: Scaler | null = null;
  private readonly asking = new Map<string, number>(); // autoscaled kind -> asks in flight

  private constructor(private readonly options: SystemOptions) {
    this.events = new EventLog(options.eventLogSize);
    const scaled = options.autoscale ?? {};
    this.placement = new Placement({
      rules: [...Object.keys(scaled).map((kind) => ({ kind, location: `${SCALED}:${kind}`, fallback: [] })), ...(options.placement ?? [])],
      defaultLocation: options.defaultLocation ?? "inprocess",
      replicas: options.replicas,
      fallback: options.fallback,
    });
    this.locator = new Locator(this.placement, (loc) => this.proxies.get(loc), (e) => this.events.emit(e),
      (name, loc) => this.proxies.get(loc)?.passivate(name), // home again: free the copy's memory
      (name) => {
        const id = this.scaler ? parseId(name) : null;
        return id && id.kind in scaled ? this.scaler!.route(id.kind, id.key) : undefined;
      });
    for (const t of [...defaultTransports(), ...(options.transports ?? [])]) this.transports.set(t.scheme, t);
    this.askTimeoutMs = options.askTimeoutMs ?? 30_000;
    this.owner = {
      emit: (e) => {
        this.events.emit(e);
        if (e.type === "host_up") this.locator.hostBack(e.location);
      },
      onEvent: (e, from) => this.supervise(e, from),
      route: (from, gen, f) => {
        if (f.id === 0) return this.tell(f.to, f.msg);
        // The host keeps its own timer too; ours makes sure the system side ends as well.
        this.ask(f.to, f.msg, { timeoutMs: f.timeoutMs ?? this.askTimeoutMs, retry: f.retry }).then(
          (value) => from.reply(gen, f.id, value),
          (err) => from.reply(gen, f.id, undefined, asActorError(err, f.to).toInfo()),
        );
      },
      retry: (p, dead) => this.retry(p, dead),
      lost: (from, actors) => this.relocate(from, actors),
      resend: (to, msg, p) => (p ? this.dispatch(p) : this.tell(to, msg)),
    };
    if (Object.keys(scaled).length) this.scaler = createScaler(options.scaler ?? "local", scaled, this.scalerHosts());
  }

  private scalerHosts(): ScalerHosts {
    return {
      start: (loc) => (this.stopping ? Promise.reject(new Error("the actor system is stopping")) : this.proxy(loc).ready),
      isReady: (loc) => this.proxies.get(loc)?.status === "ready",
      inFlight: (loc) => this.proxies.get(loc)?.inFlight ?? 0,
      // Forgotten first: nothing routes to it while it passivates its actors and ends.
      stop: async (loc) => {
        const p = this.proxies.get(loc);
        this.proxies.delete(loc);
        await p?.stop(this.askTimeoutMs);
      },
      asksInFlight: (kind) => this.asking.get(kind) ?? 0,
      emit: (e) => this.events.emit(e),
    };
  }

  /**
   * Start a host at every location the placement names and wait until those actors are placed at
   * have loaded the registry (a fallback that is not up yet is only needed once a host is lost).
   */
  static async start(options: SystemOptions): Promise<ActorSystem> {
    const system = new ActorSystem(options);
    for (const loc of system.placement.locations()) system.proxy(loc);
    try {
      await Promise.all(system.placement.placed().map((loc) => system.proxy(loc).ready));
    } catch (err) {
      await system.stop(0);
      throw err;
    }
    return system;
  }

  tell(to: Target, msg: unknown): void {
    if (this.stopping) return;
    const name = nameOf(to);
    this.proxyFor(name)?.tell(name, msg);
  }

  ask<R = unknown>(to: Target, msg: unknown, opts?: AskOptions): Promise<R> {
    const name = nameOf(to);
    if (this.stopping) return Promise.reject(stoppedError(name));
    const timeoutMs = opts?.timeoutMs ?? this.askTimeoutMs;
    const { p, promise } = pendingAsk<R>(name, msg, { timeoutMs, retry: opts?.retry ?? false }, (x) => this.timeoutError(x));
    const kind = this.scaler ? parseId(name).kind : "";
    if (this.options.autoscale?.[kind]) {
      this.asking.set(kind, (this.asking.get(kind) ?? 0) + 1);
      const done = () => this.asking.set(kind, this.asking.get(kind)! - 1);
      promise.then(done, done);
    }
    this.dispatch(p);
    return promise;
  }

  /** The location an actor is placed at. */
  locate(to: Target): string {
    return this.placement.locate(to);
  }

  /** Where the actor's next message goes: its placed location, or a fallback while that is lost. */
  routeOf(to: Target): string {
    return this.locator.locate(nameOf(to));
  }

  /** True when the host that would take the actor's next message (after fallback) is ready. */
  isReachable(to: Target): boolean {
    if (this.stopping) return false;
    try {
      return this.locator.reachable(nameOf(to));
    } catch {
      return false; // not an actor id
    }
  }

  /** Every host the system has started, with its status and the actors active there. */
  hosts(): HostInfo[] {
    return [...this.proxies.values()].map((p) => p.info());
  }

  locations(): string[] {
    return [...this.proxies.keys()];
  }

  /** Crash a host as a failure would (terminate the worker, SIGKILL the process). */
  killHost(location: string, reason?: string): void {
    const p = this.proxies.get(location);
    if (!p) throw new Error(`no host at ${location} (have: ${this.locations().join(", ")})`);
    p.kill(reason);
  }

  /** Passivate every actor (up to graceMs per host), then end the hosts. Pending asks fail. */
  async stop(graceMs = 2000): Promise<void> {
    this.stopping = true;
    await this.scaler?.stop();
    await Promise.all([...this.proxies.values()].map((p) => p.stop(graceMs)));
  }

  private dispatch(p: PendingAsk): void {
    const proxy = this.proxyFor(p.to, p);
    proxy?.ask(p);
  }

  private proxyFor(name: string, p?: PendingAsk): HostProxy | undefined {
    try {
      return this.proxy(this.locator.locate(name));
    } catch (err) {
      p?.reject(asActorError(err, name));
      return undefined;
    }
  }

  private proxy(location: string): HostProxy {
    let proxy = this.proxies.get(location);
    if (proxy) return proxy;
    const transport = this.transports.get(schemeOf(location));
    if (!transport) {
      const have = [...this.transports.keys()].join(", ");
      throw new ActorError(`no transport for location "${location}" (have: ${have})`, "unreachable");
    }
    // The registry goes to the host with the transport, never in a frame (see transport.ts).
    const host = { registry: resolveRegistryRef(this.options.registry) };
    proxy = new HostProxy(location, bindHost(transport, host), this.hostInit(location), this.owner);
    this.proxies.set(location, proxy);
    return proxy;
  }

  private hostInit(location: string): HostInit {
    const idle = this.options.idleTimeoutMs;
    return {
      location,
      placement: this.placement.hostSpec(),
      config: this.options.config,
      idleTimeoutMs: typeof idle === "number" ? { "*": idle } : { ...idle },
      askTimeoutMs: this.askTimeoutMs,
    };
  }

  /** Replicas of one kind+key are interchangeable: prefer one whose host is up and elsewhere. */
  private retry(p: PendingAsk, deadLocation: string): void {
    if (this.stopping) return p.reject(stoppedError(p.to));
    if (++p.attempts >= MAX_ATTEMPTS) {
      return p.reject(new ActorError(`${p.to}: gave up after ${p.attempts} attempts (hosts kept dying)`, "host_down", p.to));
    }
    const id = parseId(p.to);
    const n = this.placement.replicasOf(id.kind, id.key);
    for (let k = 1; k < n; k++) {
      const name = `${id.kind}/${id.key}#${(id.replica + k) % n}`;
      const loc = this.locator.locate(name);
      if (loc !== deadLocation && this.proxies.get(loc)?.status === "ready") {
        p.to = name;
        break;
      }
    }
    this.dispatch(p); // no other replica: the same one, at a fallback or once its host is back
  }

  /** A host died holding these actors: bring them up at once where their messages now go. */
  private relocate(from: HostProxy, actors: readonly string[]): void {
    if (this.stopping) return;
    for (const name of actors) {
      const loc = this.locator.locate(name);
      if (loc !== from.location) this.proxies.get(loc)?.activate(name, true);
    }
  }

  /** Past the deadline: a slow actor, or nowhere to run it (its host lost, no fallback ready). */
  private timeoutError(p: PendingAsk): ActorError {
    if (this.isReachable(p.to)) return askTimeout(p.to, p.msg, p.timeoutMs);
    const home = this.placement.locate(p.to);
    const fb = this.placement.fallbackOf(p.to);
    const status = this.proxies.get(home)?.status ?? "not started";
    const where = `${home} is ${status}; ${fb.length ? `fallback ${fb.join(", ")} not ready` : "no fallback"}`;
    return new ActorError(`${p.to}: no host could take "${messageType(p.msg)}" within ${p.timeoutMs} ms (${where})`, "unavailable", p.to);
  }

  private supervise(e: RuntimeEvent, from: HostProxy): void {
    if (e.type === "activated" || e.type === "restarted") from.active.add(e.actor);
    if (e.type === "passivated" || e.type === "failed") from.active.delete(e.actor);
    this.events.emit(e);
    // A handler threw: bring the actor back now with fresh state, so the next message finds it
    // warm. A failed activation is not retried here (it would spin); the next message retries it.
    if (e.type === "failed" && e.phase === "handle" && !this.stopping) from.activate(e.actor, true);
  }
}

function asActorError(err: unknown, to: string): ActorError {
  return err instanceof ActorError ? err : new ActorError(`${to}: ${errorText(err)}`, "unreachable", to);
}
