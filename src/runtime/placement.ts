// Where each actor runs. Plain data (PlacementSpec) so the same table travels to every host, and
// each host can tell a local target (handled by reference) from a remote one (sent upstream).
// Each actor also has fallback locations: where the system may re-activate it while its own host
// is lost (locator.ts decides when). Hosts never need them: a host sends every target that is not
// placed on it upstream, and the system, which knows what is up, forwards it.
//
//   PlacementRule {kind?, key?, replica?, location, fallback?}
//   PlacementSpec {rules, defaultLocation, replicas?, fallback?}
//   Placement(spec) { locate(target), fallbackOf(target), replicasOf(kind, key), locations(), placed(),
//     hostSpec() }
//   schemeOf(location)
import { type ActorId, type Target, nameOf, parseId } from "./actor.ts";

/** Fields left out match anything. The first matching rule wins. */
export interface PlacementRule {
  readonly kind?: string;
  readonly key?: string;
  readonly replica?: number;
  /** "inprocess", "worker:N", "process:N", or any scheme a registered transport serves ("node:a"). */
  readonly location: string;
  /** Where the actor may be re-activated while its host is lost, in order. Default: the spec's. */
  readonly fallback?: readonly string[];
}

export interface PlacementSpec {
  readonly rules: readonly PlacementRule[];
  readonly defaultLocation: string;
  /** How many interchangeable replicas a "kind" or a "kind/key" has (default 1): retries pick among them. */
  readonly replicas?: Readonly<Record<string, number>>;
  /** Fallback locations for actors whose rule names none (default: none, wait for the host). */
  readonly fallback?: readonly string[];
}

const LOCATION_RE = /^[a-z][a-z0-9_-]*(:[A-Za-z0-9_.-]+)?$/;

/** The scheme of the place an autoscaled kind is "placed" at: on no host, so every host sends its
 * asks upstream, where the system (which counts them as backlog) asks the scaler where they go. */
export const SCALED = "scaled";

export function schemeOf(location: string): string {
  const i = location.indexOf(":");
  return i < 0 ? location : location.slice(0, i);
}

export class Placement {
  private readonly cache = new Map<string, { location: string; fallback: readonly string[] }>();

  constructor(readonly spec: PlacementSpec) {
    const named = [spec.defaultLocation, ...(spec.fallback ?? []), ...spec.rules.flatMap((r) => [r.location, ...(r.fallback ?? [])])];
    for (const loc of named) {
      if (!LOCATION_RE.test(loc)) throw new Error(`placement: "${loc}" is not a location (e.g. inprocess, worker:0, process:1)`);
    }
  }

  /** The location an actor is placed at. Cached: the table is fixed for the life of a system. */
  locate(target: Target): string {
    return this.entry(target).location;
  }

  /** Where the actor may go while its host is lost, in order (never its own location). */
  fallbackOf(target: Target): readonly string[] {
    return this.entry(target).fallback;
  }

  replicasOf(kind: string, key: string): number {
    const r = this.spec.replicas;
    return r?.[`${kind}/${key}`] ?? r?.[kind] ?? 1;
  }

  /** Every location the table names, default first, then placed, then fallback-only ones. */
  locations(): string[] {
    const s = this.spec;
    return [...new Set([...this.placed(), ...(s.fallback ?? []), ...s.rules.flatMap((r) => r.fallback ?? [])])];
  }

  /** The locations actors are placed at (default first): without them the system cannot serve.
   * An autoscaled kind's place (SCALED) is no host: its scaler decides where it runs. */
  placed(): string[] {
    return [...new Set([this.spec.defaultLocation, ...this.spec.rules.map((r) => r.location)])].filter((l) => schemeOf(l) !== SCALED);
  }

  /** The table as hosts need it: where things are placed, without the system's fallbacks. */
  hostSpec(): PlacementSpec {
    const { rules, defaultLocation, replicas } = this.spec;
    return { rules: rules.map(({ fallback: _, ...r }) => r), defaultLocation, ...(replicas ? { replicas } : {}) };
  }

  private entry(target: Target) {
    const name = nameOf(target);
    let e = this.cache.get(name);
    if (e === undefined) {
      const rule = this.match(typeof target === "string" ? parseId(name) : target);
      const location = rule?.location ?? this.spec.defaultLocation;
      const fallback = (rule?.fallback ?? this.spec.fallback ?? []).filter((l) => l !== location);
      e = { location, fallback: [...new Set(fallback)] };
      this.cache.set(name, e);
    }
    return e;
  }

  private match(id: ActorId): PlacementRule | undefined {
    for (const r of this.spec.rules) {
      if (r.kind !== undefined && r.kind !== id.kind) continue;
      if (r.key !== undefined && r.key !== id.key) continue;
      if (r.replica !== undefined && r.replica !== id.replica) continue;
      return r;
    }
    return undefined;
  }
}
