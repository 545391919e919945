// The model as actors: an ActorSystem started from a scaling config, with the engine's steps
// sent to attention actors (one per data-parallel replica) as protocol messages.
import { resolve } from "node:path";
import { loadModelConfig } from "../config/model.ts";
import { type ResolvedScaling, loadScaling, resolveScaling } from "../config/scaling.ts";
import { moeLayers } from "../model/moe.ts";
import { ATTENTION, type AttentionMsg, type ModelActorsConfig, ROUTER, type RouterMsg } from "../protocol.ts";
import { ActorSystem } from "../runtime/system.ts";
import type { Transport } from "../runtime/transport.ts";
import type { ModelBackend, SeqResult, SeqWork } from "./backend.ts";

export interface ActorBackendOptions {
  model: string;
  scaling: string; // file
  pages: number;
  pageSize: number;
  mtp?: boolean;
  transports?: Transport[];
  askTimeoutMs?: number;
}

const REGISTRY = new URL("../../actors/index.ts", import.meta.url).pathname;

export class ActorBackend implements ModelBackend {
  private constructor(readonly system: ActorSystem, readonly config: ReturnType<typeof loadModelConfig>,
                      readonly pages: number, readonly pageSize: number, readonly replicas: number,
                      readonly routers: number, readonly scaling: ResolvedScaling) {}

  static async start(o: ActorBackendOptions): Promise<ActorBackend> {
    const model = resolve(o.model);
    const config = loadModelConfig(`${model}/config.json`);
    const scaling = resolveScaling(loadScaling(o.scaling), { n_routed_experts: config.n_routed_experts, moe_layers: moeLayers(config) });
    const actorsConfig: ModelActorsConfig = {
      model, pages: o.pages, pageSize: o.pageSize, mtp: o.mtp ?? false,
      attentionReplicas: scaling.attentionReplicas, routers: scaling.routers,
      expertTable: scaling.expertTable, expertActors: scaling.expertActors, device: scaling.device,
    };
    const system = await ActorSystem.start({
      registry: { module: REGISTRY, export: "registry" },
      placement: scaling.placement,
      defaultLocation: scaling.defaultLocation,
      idleTimeoutMs: scaling.idleTimeoutMs,
      askTimeoutMs: o.askTimeoutMs ?? 120_000,
      config: actorsConfig,
      transports: o.transports,
    });
    return new ActorBackend(system, config, o.pages, o.pageSize, scaling.attentionReplicas, scaling.routers, scaling);
  }

  get batch() {
    return this.scaling.batch;
  }

  step(replica: number, work: SeqWork[]): Promise<SeqResult[]> {
    return this.system.ask<SeqResult[]>(`${ATTENTION}/${replica}`, { type: "step", work } satisfies AttentionMsg);
  }

  mtpLogits(tokens: number[], pages: number[]): Promise<Float32Array> {
    return this.system.ask<Float32Array>(`${ATTENTION}/0`, { type: "mtp_logits", tokens, pages } satisfies AttentionMsg);
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

  async close(): Promise<void> {
    await this.system.stop();
  }
}
