// Composing the model backend a command asks for: the configs are parsed here, once, at the
// edge (config.json and the scaling file), and handed frozen to the backend with the actor
// registry's ref; the engine itself reads no files and knows no actor module.
import { resolve } from "node:path";
import { loadModelConfig } from "../config/model.ts";
import { loadScaling, resolveScaling } from "../config/scaling.ts";
import type { ActorBackend } from "../engine/actor-backend.ts";
import type { ModelBackend } from "../engine/backend.ts";
import { DirectBackend } from "../engine/direct.ts";
import { type KvCacheDtype, resolveKvDtype } from "../model/kvcache.ts";
import { moeLayers } from "../model/moe.ts";
import type { Transport } from "../runtime/transport.ts";

/** The default placement: every actor in one Bun worker off the calling thread. */
export const DEFAULT_SCALING = new URL("../../configs/scaling/single-worker.yaml", import.meta.url).pathname;

/** The model's actor kinds: every host imports this module for itself (see src/runtime/registry.ts). */
export const ACTOR_REGISTRY = { module: new URL("../../actors/index.ts", import.meta.url).pathname, export: "registry" };

export interface BackendOptions {
  model: string;
  scaling?: string; // a scaling config file (default: the single-worker one), or "direct"
  pages?: number;
  pageSize?: number;
  mtp?: boolean;
  kvTokens?: number; // KV cache size in tokens per attention replica
  kvCacheDtype?: KvCacheDtype; // the latent caches' dtype (absent: f32, the reference's numbers; auto: AUTO_KV_DTYPE)
  transports?: Transport[]; // extra transports, e.g. NATS for node:NAME placements
  askTimeoutMs?: number; // overrides the scaling config's ask_timeout_ms
  scaler?: "local" | "external"; // who acts on autoscaled kinds' demand (default local)
}

export async function createBackend(o: BackendOptions): Promise<ModelBackend> {
  const pageSize = o.pageSize ?? 16;
  const pages = o.pages ?? Math.ceil((o.kvTokens ?? 8192) / pageSize);
  const kvCacheDtype = resolveKvDtype(o.kvCacheDtype);
  if (o.scaling === "direct") return new DirectBackend(o.model, { pages, pageSize, mtp: o.mtp, kvCacheDtype });
  return startActorBackend({ ...o, pages, pageSize });
}

/** The actors of a scaling config file (default the single-worker one). */
export async function startActorBackend(o: BackendOptions & { pages: number; pageSize: number }): Promise<ActorBackend> {
  const model = resolve(o.model);
  const config = Object.freeze(loadModelConfig(`${model}/config.json`));
  const scaling = resolveScaling(loadScaling(o.scaling ?? DEFAULT_SCALING), { n_routed_experts: config.n_routed_experts, moe_layers: moeLayers(config) });
  // Loaded on demand: the direct backend never starts an actor system.
  const { ActorBackend } = await import("../engine/actor-backend.ts");
  return ActorBackend.start({
    model, config, scaling, registry: ACTOR_REGISTRY, pages: o.pages, pageSize: o.pageSize, mtp: o.mtp, kvCacheDtype: resolveKvDtype(o.kvCacheDtype),
    transports: o.transports, askTimeoutMs: o.askTimeoutMs, scaler: o.scaler,
  });
}
