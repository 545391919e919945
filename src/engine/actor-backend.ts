// The model as actors: an ActorSystem started from a parsed scaling config, with the engine's
// steps sent to attention actors (one per data-parallel replica) as protocol messages. The caller
// composes it (src/commands/backend.ts): the configs arrive parsed and the registry as a ref.
import type { ModelConfig } from "../config/model.ts";
import type { ResolvedScaling } from "../config/scaling.ts";
import {
  ATTENTION, type AttentionMsg, type AttentionReply, EXPERT, type ModelActorsConfig, ROUTER, type RouterMsg,
  type StepFailure,
} from "../protocol.ts";
import { ActorError } from "../runtime/actor.ts";
import { ActorSystem, type SystemOptions } from "../runtime/system.ts";
import type { Transport } from "../runtime/transport.ts";
import { clusterView } from "./cluster-view.ts";
import { Eplb } from "./eplb.ts";
import { BackendUnavailable, type ModelBackend, type SeqResult, type SeqWork } from "./backend.ts";
import type { ClusterState, EngineHealth } from "./types.ts";

export interface ActorBackendOptions {
  model: string; // the checkpoint directory the actors map their weights from
  config: ModelConfig; // its config.json, parsed once by the caller
  scaling: ResolvedScaling;
  registry: SystemOptions["registry"]; // the module every host takes the actor kinds from
  pages: number;
  pageSize: number;
  mtp?: boolean;
  kvCacheDtype?: ModelActorsConfig["kvCacheDtype"]; // the attention actors' latent caches (default f32)
  transports?: Transport[];
  askTimeoutMs?: number; // overrides the scaling config's ask_timeout_ms
  scaler?: "local" | "external"; // who acts on the autoscaled kinds' demand (default local)
}

/** The ask timeout when the scaling config names none. */
const DEFAULT_ASK_TIMEOUT_MS = 30_000;

/** A failed ask as the engine sees it: the attention actor's handler failing is this step's own
 * failure; any other code means no host could run it. "timeout" and "unavailable" come at the
 * ask's deadline: retrying would overrun ask_timeout_ms, so they are final. */
function stepError(e: unknown): Error {
  if (!(e instanceof ActorError) || e.code === "handler") return e as Error;
  return new BackendUnavailable(e.message, e.code === "timeout" || e.code === "unavailable");
}

export class ActorBackend implements ModelBackend {
  private readonly targets: string[]; // one of each actor the model needs, for health
  /** Online EPLB, when the scaling config replicates hot experts (timed by experts.rebalance_ms). */
  readonly eplb: Eplb | null;

  private constructor(readonly system: ActorSystem, readonly config: ModelConfig, readonly pages: number,
                      readonly pageSize: number, readonly replicas: number, readonly routers: number,
                      readonly scaling: ResolvedScaling) {
    this.targets = [
      ...Array.from({ length: replicas }, (_, i) => `${ATTENTION}/${i}`),
      ...Array.from({ length: routers }, (_, i) => `${ROUTER}/${i}`),
      ...Object.keys(scaling.expertActors).map((k) => `${EXPERT}/${k}`),
    ];
    this.eplb = scaling.hotExperts.length === 0 ? null : new Eplb({
      ask: (to, msg) => system.ask(to, msg, { retry: true }), routers, table: scaling.expertTable,
      hot: scaling.hotExperts.length, periodMs: scaling.rebalanceMs, onError: (e) => console.warn(`eplb: ${e.message}`),
    });
  }

  static async start(o: ActorBackendOptions): Promise<ActorBackend> {
    const s = o.scaling;
    const actorsConfig: ModelActorsConfig = {
      model: o.model, pages: o.pages, pageSize: o.pageSize, mtp: o.mtp ?? false, kvCacheDtype: o.kvCacheDtype,
      attentionReplicas: s.attentionReplicas, routers: s.routers,
      expertTable: s.expertTable, expertActors: s.expertActors, device: s.device,
    };
    const system = await ActorSystem.start({
      registry: o.registry,
      placement: s.placement,
      defaultLocation: s.defaultLocation,
      idleTimeoutMs: s.idleTimeoutMs,
      askTimeoutMs: o.askTimeoutMs ?? s.askTimeoutMs ?? DEFAULT_ASK_TIMEOUT_MS,
      config: actorsConfig,
      transports: o.transports,
      autoscale: s.autoscale,
      scaler: o.scaler,
    });
    return new ActorBackend(system, o.config, o.pages, o.pageSize, s.attentionReplicas, s.routers, s);
  }

  /** The autoscaled kinds' demand: the engine's sequences, read at each of the scaler's ticks. */
  scaleOn(demand: () => number): void {
    this.system.scaler?.demandFrom(demand);
  }

  /** Hosts and backlog per autoscaled kind, for /metrics (none without autoscale). */
  scalingStats(): { actor_replicas: Record<string, number>; actor_backlog: Record<string, number> } | undefined {
    const sc = this.system.scaler;
    if (!sc) return undefined;
    const of = (f: (k: string) => number) => Object.fromEntries(sc.kinds().map((k) => [k, f(k)]));
    return { actor_replicas: of((k) => sc.replicas(k)), actor_backlog: of((k) => sc.backlog(k)) };
  }

  get batch() {
    return this.scaling.batch;
  }

  async step(replica: number, work: SeqWork[]): Promise<SeqResult[]> {
    let reply: AttentionReply;
    const table = this.eplb?.begin(); // the expert table this whole step routes with
    try {
      // Safe to resend after a host loss: a re-activated actor refuses (stale) every sequence
      // that continues a cache it does not hold, so nothing is computed on a missing cache.
      const msg: AttentionMsg = { type: "step", work, table };
      reply = await this.system.ask<AttentionReply>(`${ATTENTION}/${replica}`, msg, { retry: true });
    } catch (e) {
      throw stepError(e);
    } finally {
      if (table !== undefined) this.eplb!.end(table);
    }
    if (Array.isArray(reply)) return reply;
    const f = reply as StepFailure;
    throw f.unavailable ? new BackendUnavailable(f.failed, f.final) : new Error(f.failed);
  }

  release(replica: number, seqs: string[]): void {
    this.system.tell(`${ATTENTION}/${replica}`, { type: "release", seqs } satisfies AttentionMsg);
  }

  /** Not ready while any actor the model needs has no live host to run on. */
  health(): EngineHealth {
    const down = this.targets.filter((t) => !this.system.isReachable(t));
    return down.length ? { ready: false, reason: `no live host for ${down.join(", ")}` } : { ready: true };
  }

  mtpLogits(tokens: number[], pages: number[]): Promise<Float32Array> {
    return this.system.ask<Float32Array>(`${ATTENTION}/0`, { type: "mtp_logits", tokens, pages } satisfies AttentionMsg, { retry: true });
  }

  async expertLoad(): Promise<Record<number, number[]>> {
    const sum: Record<number, number[]> = {};
    for (let r = 0; r < this.routers; r++) {
      const load = await this.system.ask<Record<number, number[]>>(`${ROUTER}/${r}`, { type: "load" } satisfies RouterMsg);
      for (const [l, v] of Object.entries(load)) {
        const acc = (sum[Number(l)] ??= new Array(v.length).fill(0));
        v.forEach((x, i) => (acc[i] += x));
      }
    }
    return sum;
  }

  cluster(): Omit<ClusterState, "expert_load"> {
    return clusterView(this.system, this.targets);
  }

  async close(): Promise<void> {
    this.eplb?.stop();
    await this.system.stop();
  }
}
