// Autoscaling: a kind's actors are a fixed set; what scales is the hosts they run on. With no
// host of its own a kind's actors live at its base location (the first ask after idling is a cold
// start there); with k hosts they are spread round-robin over them. Scaling up starts a host and
// moves actors to it once it is ready; scaling down moves the actors off a host first (new asks
// go elsewhere), waits for the asks in flight there to finish (drain), then stops it, which
// releases its memory. Only stateless kinds may scale (the config checks it): an actor that moves
// carries nothing, so no output changes.
//
// Demand ("backlog") per kind: the asks in flight to its actors (the system sees every one:
// autoscaled actors are placed on no host, so every host sends their asks upstream), or what
// `demandFrom` says (the engine's running + waiting sequences).
//
//   AutoscaleKind; Scaler { mode, kinds(), route(kind, key), replicas(kind), backlog(kind),
//     demandFrom(fn), stop() }; LocalScaler, ExternalScaler; ScalerHosts (what the system lends)
import type { RuntimeEvent } from "./events.ts";

export interface AutoscaleKind {
  readonly min_replicas: number;
  readonly max_replicas: number;
  readonly target_backlog: number;
  readonly scale_down_after_ms: number;
  /** Where the actors live with no host of their own. */
  readonly base: string;
  /** The locations this kind's hosts take, in order (max_replicas of them). */
  readonly hosts: readonly string[];
  /** The kind's actor keys, in the order they are dealt to hosts. */
  readonly keys: readonly string[];
}

/** What a scaler needs of the system. */
export interface ScalerHosts {
  /** Start (or find) the host at `location`; resolves once it is ready. */
  start(location: string): Promise<void>;
  /** The host at `location` is up and takes asks. */
  isReady(location: string): boolean;
  /** Asks in flight to the host at `location` (0 when none is there). */
  inFlight(location: string): number;
  /** Stop the host at `location` and forget it (its actors are passivated). */
  stop(location: string): Promise<void>;
  /** Asks in flight to this kind's actors. */
  asksInFlight(kind: string): number;
  emit(e: RuntimeEvent): void;
}

export interface Scaler {
  readonly mode: "local" | "external";
  kinds(): string[];
  /** Where an actor of an autoscaled kind takes its next message. */
  route(kind: string, key: string): string;
  /** Hosts serving the kind now (0 = its base location). */
  replicas(kind: string): number;
  backlog(kind: string): number;
  /** The demand to read instead of the asks in flight (e.g. the engine's sequences). */
  demandFrom(fn: (kind: string) => number): void;
  stop(): Promise<void>;
}

const DRAIN_POLL_MS = 20;

abstract class BaseScaler implements Scaler {
  abstract readonly mode: "local" | "external";
  protected demand: ((kind: string) => number) | null = null;

  constructor(protected readonly spec: Readonly<Record<string, AutoscaleKind>>, protected readonly sys: ScalerHosts) {}

  kinds(): string[] {
    return Object.keys(this.spec);
  }

  route(kind: string, key: string): string {
    const s = this.spec[kind]!;
    const serving = this.serving(kind);
    if (!serving.length) return s.base;
    const i = s.keys.indexOf(key);
    return serving[(i < 0 ? hashOf(key) : i) % serving.length]!;
  }

  replicas(kind: string): number {
    return this.serving(kind).length;
  }

  backlog(kind: string): number {
    return this.demand ? this.demand(kind) : this.sys.asksInFlight(kind);
  }

  demandFrom(fn: (kind: string) => number): void {
    this.demand = fn;
  }

  /** The kind's hosts that take new asks, in host order. */
  protected abstract serving(kind: string): string[];
  abstract stop(): Promise<void>;
}

/** Publishes the demand only: an orchestrator (KEDA) reads it from /metrics and adds hosts. */
export class ExternalScaler extends BaseScaler {
  readonly mode = "external" as const;
  protected serving(): string[] {
    return [];
  }
  async stop(): Promise<void> {}
}

/** Starts and stops local hosts (workers or processes) itself, every tick. */
export class LocalScaler extends BaseScaler {
  readonly mode = "local" as const;
  private readonly ready = new Map<string, Set<string>>(); // kind -> hosts taking asks
  private readonly owned = new Map<string, Set<string>>(); // kind -> hosts starting or ready
  private readonly draining = new Set<string>(); // hosts finishing their asks before they stop
  private readonly lowSince = new Map<string, number>();
  private readonly timer: ReturnType<typeof setInterval>;
  private stopped = false;
  private busy = Promise.resolve();

  constructor(spec: Readonly<Record<string, AutoscaleKind>>, sys: ScalerHosts, tickMs?: number) {
    super(spec, sys);
    for (const kind of this.kinds()) {
      this.ready.set(kind, new Set());
      this.owned.set(kind, new Set());
    }
    const shortest = Math.min(...Object.values(spec).map((s) => s.scale_down_after_ms));
    this.timer = setInterval(() => this.tick(), tickMs ?? Math.max(50, Math.min(500, shortest / 4)));
    (this.timer as { unref?: () => void }).unref?.();
  }

  /** Ready hosts only: while one is lost (restarting) its share goes to the others or the base. */
  protected serving(kind: string): string[] {
    const r = this.ready.get(kind)!;
    return this.spec[kind]!.hosts.filter((h) => r.has(h) && this.sys.isReady(h));
  }

  /** Ends the ticks; a start or drain under way ends with the system's hosts. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
  }

  /** One decision per kind; a tick waits for the previous one's host starts (not for drains). */
  private tick(): void {
    if (this.stopped) return;
    this.busy = this.busy.then(async () => {
      for (const kind of this.kinds()) if (!this.stopped) await this.decide(kind);
    });
  }

  private async decide(kind: string): Promise<void> {
    const s = this.spec[kind]!;
    const backlog = this.backlog(kind);
    const want = Math.min(s.max_replicas, Math.max(s.min_replicas, Math.ceil(backlog / s.target_backlog)));
    const have = this.owned.get(kind)!.size;
    if (want >= have) this.lowSince.delete(kind);
    if (want > have) return this.up(kind, want, backlog);
    if (want === have) return;
    const since = this.lowSince.get(kind) ?? performance.now();
    this.lowSince.set(kind, since);
    if (performance.now() - since >= s.scale_down_after_ms) {
      this.lowSince.delete(kind);
      this.down(kind, want, backlog);
    }
  }

  private async up(kind: string, want: number, backlog: number): Promise<void> {
    const have = this.owned.get(kind)!;
    const from = this.serving(kind).length;
    const add = this.spec[kind]!.hosts.filter((h) => !have.has(h) && !this.draining.has(h)).slice(0, want - have.size);
    if (!add.length) return; // every free host is still draining: the next tick tries again
    for (const h of add) have.add(h);
    // Actors move only once a host is ready: until then their asks go where they were.
    const started = await Promise.allSettled(add.map((h) => this.sys.start(h)));
    add.forEach((h, i) => (started[i]!.status === "fulfilled" ? this.ready.get(kind)!.add(h) : have.delete(h)));
    this.announce(kind, from, backlog);
  }

  /** New asks stop going to the dropped hosts now; each stops once its asks in flight are done. */
  private down(kind: string, want: number, backlog: number): void {
    const have = this.owned.get(kind)!;
    const from = this.serving(kind).length;
    const drop = this.spec[kind]!.hosts.filter((h) => have.has(h)).slice(want);
    for (const h of drop) {
      this.ready.get(kind)!.delete(h);
      have.delete(h);
      this.draining.add(h);
    }
    this.announce(kind, from, backlog);
    for (const h of drop) void this.drain(h);
  }

  private async drain(h: string): Promise<void> {
    while (this.sys.inFlight(h) > 0 && !this.stopped) await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
    await this.sys.stop(h).catch(() => {});
    this.draining.delete(h);
  }

  private announce(kind: string, from: number, backlog: number): void {
    const hosts = this.serving(kind);
    this.sys.emit({ type: "scaled", kind, location: this.spec[kind]!.base, replicas: hosts.length, from, backlog, hosts, at: Date.now() });
  }
}

export function createScaler(mode: "local" | "external", spec: Readonly<Record<string, AutoscaleKind>>, hosts: ScalerHosts): Scaler {
  return mode === "external" ? new ExternalScaler(spec, hosts) : new LocalScaler(spec, hosts);
}

function hashOf(key: string): number {
  let h = 0;
  for (const c of key) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return h;
}
