// The actors and hosts of an ActorSystem as GET /v1/cluster shows them: every actor the model needs
// (and any other that ever ran), active where a host holds it now, passivated otherwise. Replicas are
// counted per kind/key: an expert actor with redundant copies (`expert/3#0`, `expert/3#1`) is one row.
import { parseId } from "../runtime/actor.ts";
import type { ActorSystem } from "../runtime/system.ts";
import type { ClusterActor, ClusterState } from "./types.ts";

export function clusterView(system: ActorSystem, targets: readonly string[]): Omit<ClusterState, "expert_load"> {
  const hosts = system.hosts().map((h) => ({ location: h.location, status: h.status, lost: h.lost, actors: h.actors }));
  const active = new Map<string, { locations: string[] }>(); // kind/key -> where its replicas run
  for (const h of hosts) {
    if (h.status === "stopped") continue;
    for (const name of h.actors) (active.get(kindKey(name)) ?? setNew(active, kindKey(name))).locations.push(h.location);
  }
  // passivated ones are known from the model's needs and from the event log (activated once)
  const known = new Set<string>([...targets.map(kindKey), ...active.keys()]);
  for (const e of system.events.recent()) if ("actor" in e) known.add(kindKey(e.actor));
  const actors: ClusterActor[] = [...known].sort(byKindKey).map((id) => {
    const [kind, key] = splitId(id);
    const here = active.get(id);
    return {
      id, kind, key,
      location: here?.locations[0] ?? routeOf(system, id),
      state: here ? "active" : "passivated",
      replicas: here?.locations.length ?? 0,
    };
  });
  return { hosts, actors };
}

function setNew(m: Map<string, { locations: string[] }>, k: string) {
  const v = { locations: [] as string[] };
  m.set(k, v);
  return v;
}

function kindKey(name: string): string {
  try {
    const id = parseId(name);
    return `${id.kind}/${id.key}`;
  } catch {
    return name;
  }
}

function splitId(id: string): [string, string] {
  const i = id.indexOf("/");
  return i < 0 ? [id, ""] : [id.slice(0, i), id.slice(i + 1)];
}

function routeOf(system: ActorSystem, id: string): string {
  try {
    return system.routeOf(id);
  } catch {
    return "";
  }
}

/** Kind, then key in numeric order where keys are numbers (expert/2 before expert/10). */
function byKindKey(a: string, b: string): number {
  const [ka, xa] = splitId(a), [kb, xb] = splitId(b);
  if (ka !== kb) return ka < kb ? -1 : 1;
  const na = Number(xa), nb = Number(xb);
  return Number.isFinite(na) && Number.isFinite(nb) ? na - nb : xa.localeCompare(xb);
}
