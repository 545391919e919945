// GET /v1/cluster: what runs where, as JSON, for the dashboard and for people with curl. Hosts and
// actors (kind, key, location, active/passivated, replicas) and the per-layer x per-expert load come
// from the engine; replicas over time is a short history kept here (one sample per read, at most two
// a second), since the runtime keeps only its present; TTFT/TPOT summarize the gateway's histograms.
import type { Hono } from "hono";
import type { ClusterState, Engine } from "../engine/types.ts";
import type { GatewayEnv } from "./env.ts";
import type { GatewayMetrics } from "./metrics.ts";

export interface ReplicaSample {
  t: number; // unix ms
  replicas: Record<string, number>; // active actors per kind
  hosts?: Record<string, number>; // hosts serving each autoscaled kind (moe_actor_replicas)
}

const HISTORY = 300; // samples kept (five minutes of a dashboard polling every second)
const MIN_SPACING_MS = 500;

export class ClusterWatch {
  private readonly history: ReplicaSample[] = [];

  constructor(private readonly engine: Engine, private readonly metrics: GatewayMetrics) {}

  snapshot(now = Date.now()) {
    const state = this.state();
    const scaling = this.scaling();
    const replicas: Record<string, number> = {};
    for (const a of state.actors) replicas[a.kind] = (replicas[a.kind] ?? 0) + a.replicas;
    const last = this.history.at(-1);
    if (!last || now - last.t >= MIN_SPACING_MS) {
      this.history.push({ t: now, replicas, ...(scaling.hosts ? { hosts: scaling.hosts } : {}) });
      if (this.history.length > HISTORY) this.history.splice(0, this.history.length - HISTORY);
    }
    return {
      object: "cluster",
      time: now,
      hosts: state.hosts,
      actors: state.actors,
      replicas,
      // autoscaled kinds: hosts serving each now and the demand on it (as moe_actor_replicas/_backlog)
      autoscale: scaling.hosts ? { hosts: scaling.hosts, backlog: scaling.backlog ?? {} } : null,
      replicas_history: this.history.slice(),
      expert_load: state.expert_load,
      latency: {
        ttft_seconds: this.metrics.ttft.summary(),
        tpot_seconds: this.metrics.tpot.summary(),
      },
    };
  }

  private scaling(): { hosts?: Record<string, number>; backlog?: Record<string, number> } {
    try {
      const s = this.engine.stats();
      return { hosts: s.actor_replicas, backlog: s.actor_backlog };
    } catch {
      return {};
    }
  }

  /** An engine without actors (a test double) still has its expert load in its stats. */
  private state(): ClusterState {
    if (this.engine.cluster) return this.engine.cluster();
    let load: ClusterState["expert_load"] = {};
    try {
      load = this.engine.stats().expert_load;
    } catch {
      // an unwell engine: no load to show
    }
    return { hosts: [], actors: [], expert_load: load };
  }
}

export function clusterRoutes(app: Hono<GatewayEnv>, watch: ClusterWatch): void {
  app.get("/v1/cluster", (c) => c.json(watch.snapshot()));
}
