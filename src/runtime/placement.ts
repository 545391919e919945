// Where each actor runs. Plain data (PlacementSpec) so the same table travels to every host, and
// each host can tell a local target (handled by reference) from a remote one (sent upstream).
//
//   PlacementRule {kind?, key?, replica?, location}; PlacementSpec {rules, defaultLocation, replicas?}
//   Placement(spec) { locate(target), replicasOf(kind, key), locations() }; schemeOf(location)
import { type ActorId, type Target, nameOf, parseId } from "./actor.ts";

/** Fields left out match anything. The first matching rule wins. */
export interface PlacementRule {
  readonly kind?: string;
  readonly key?: string;
  readonly replica?: number;
  /** "inprocess", "worker:N", "process:N", or any scheme a registered transport serves ("node:a"). */
  readonly location: string;
}

export interface PlacementSpec {
  readonly rules: readonly PlacementRule[];
  readonly defaultLocation: string;
  /** How many interchangeable replicas a "kind" or a "kind/key" has (default 1): retries pick among them. */
  readonly replicas?: Readonly<Record<string, number>>;
}

const LOCATION_RE = /^[a-z][a-z0-9_-]*(:[A-Za-z0-9_.-]+)?$/;

export function schemeOf(location: string): string {
  const i = location.indexOf(":");
  return i < 0 ? location : location.slice(0, i);
}

export class Placement {
  private readonly cache = new Map<string, string>();

  constructor(readonly spec: PlacementSpec) {
    for (const loc of [spec.defaultLocation, ...spec.rules.map((r) => r.location)]) {
      if (!LOCATION_RE.test(loc)) throw new Error(`placement: "${loc}" is not a location (e.g. inprocess, worker:0, process:1)`);
    }
  }

  /** The location of an actor. Cached: the table is fixed for the life of a system. */
  locate(target: Target): string {
    const name = nameOf(target);
    let loc = this.cache.get(name);
    if (loc === undefined) {
      loc = this.match(typeof target === "string" ? parseId(name) : target);
      this.cache.set(name, loc);
    }
    return loc;
  }

  replicasOf(kind: string, key: string): number {
    const r = this.spec.replicas;
    return r?.[`${kind}/${key}`] ?? r?.[kind] ?? 1;
  }

  /** Every location the table names, default first. */
  locations(): string[] {
    return [...new Set([this.spec.defaultLocation, ...this.spec.rules.map((r) => r.location)])];
  }

  private match(id: ActorId): string {
    for (const r of this.spec.rules) {
      if (r.kind !== undefined && r.kind !== id.kind) continue;
      if (r.key !== undefined && r.key !== id.key) continue;
      if (r.replica !== undefined && r.replica !== id.replica) continue;
      return r.location;
    }
    return this.spec.defaultLocation;
  }
}
