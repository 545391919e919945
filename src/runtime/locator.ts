// Where an actor's messages go now. Normally its placed location; while the host there is lost
// (died, stopped heartbeating, restarting, broken) the first fallback location whose host is
// ready, so a lost host costs a re-activation elsewhere rather than a wait. When the placed host
// is ready again, new messages go home. The system is the one authority: hosts send anything not
// placed on them upstream, so a relocation never has to reach them.
//
//   HostState { status, lost }; Locator(placement, hostOf, emit, left) { locate(name),
//     reachable(name), hostBack(location), relocated() }
import type { RuntimeEvent } from "./events.ts";
import type { Placement } from "./placement.ts";

/** What the locator needs to know of a host (HostProxy). */
export interface HostState {
  readonly status: "starting" | "ready" | "down" | "broken" | "stopped";
  /** Died (or never loaded) and not ready since: its actors belong elsewhere for now. */
  readonly lost: boolean;
}

export class Locator {
  /** Actors away from their placed location: name -> where they are now. */
  private readonly moved = new Map<string, string>();
  /** Autoscaled actors: name -> where their last message went. */
  private readonly at = new Map<string, string>();

  constructor(
    private readonly placement: Placement,
    private readonly hostOf: (location: string) => HostState | undefined,
    private readonly emit: (e: RuntimeEvent) => void,
    /** The actor went home from `location`: the copy there holds nothing anyone will ask for. */
    private readonly left: (name: string, location: string) => void = () => {},
    /** Where an autoscaled actor goes now (its scaler's choice); undefined for the others. */
    private readonly scaled: (name: string) => string | undefined = () => undefined,
  ) {}

  /** The location to send to now. A lost home with no ready fallback: home (asks wait there). */
  locate(name: string): string {
    const scaled = this.scaled(name);
    if (scaled !== undefined) return this.follow(name, scaled);
    const home = this.placement.locate(name);
    const now = this.moved.get(name);
    if (!this.hostOf(home)?.lost) {
      if (now !== undefined) this.goHome(name, home, now);
      return home;
    }
    if (now !== undefined && this.ready(now)) return now;
    const to = this.placement.fallbackOf(name).find((l) => this.ready(l));
    if (to === undefined) return home;
    this.moved.set(name, to);
    this.emit({ type: "relocated", actor: name, location: to, from: now ?? home, reason: `${home} is lost`, at: Date.now() });
    return to;
  }

  /** True when the host that would get the actor's next message is ready. */
  reachable(name: string): boolean {
    return this.ready(this.locate(name));
  }

  /** The host at `location` is ready again: its actors go home (announced now, not on next use). */
  hostBack(location: string): void {
    for (const [name, now] of [...this.moved]) {
      if (this.placement.locate(name) === location) this.goHome(name, location, now);
    }
  }

  /** name -> current location, for actors away from home. */
  relocated(): ReadonlyMap<string, string> {
    return this.moved;
  }

  /** An autoscaled actor follows its scaler; the copy it leaves finishes its queue and is passivated. */
  private follow(name: string, to: string): string {
    const was = this.at.get(name);
    if (was === to) return to;
    this.at.set(name, to);
    if (was !== undefined) {
      this.emit({ type: "relocated", actor: name, location: to, from: was, reason: "scaled", at: Date.now() });
      this.left(name, was);
    }
    return to;
  }

  private goHome(name: string, home: string, now: string): void {
    this.moved.delete(name);
    this.emit({ type: "relocated", actor: name, location: home, from: now, reason: `${home} is back`, at: Date.now() });
    this.left(name, now);
  }

  private ready(location: string): boolean {
    return this.hostOf(location)?.status === "ready";
  }
}
