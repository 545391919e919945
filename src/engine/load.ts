// Builds the model backend a command asks for: the actors of a scaling config, or the plain
// in-thread model (`--scaling direct`).
import type { Transport } from "../runtime/transport.ts";
import type { ModelBackend } from "./backend.ts";
import { DirectBackend } from "./direct.ts";

/** The default placement: every actor in one Bun worker off the calling thread. */
export const DEFAULT_SCALING = new URL("../../configs/scaling/single-worker.yaml", import.meta.url).pathname;

export interface BackendOptions {
  model: string;
  scaling?: string; // a scaling config file (default: the single-worker one), or "direct"
  pages?: number;
  pageSize?: number;
  mtp?: boolean;
  kvTokens?: number; // KV cache size in tokens per attention replica
  transports?: Transport[]; // extra transports, e.g. NATS for node:NAME placements
}

export async function createBackend(o: BackendOptions): Promise<ModelBackend> {
  const pageSize = o.pageSize ?? 16;
  const pages = o.pages ?? Math.ceil((o.kvTokens ?? 8192) / pageSize);
  if (o.scaling === "direct") return new DirectBackend(o.model, { pages, pageSize, mtp: o.mtp });
  const { ActorBackend } = await import("./actor-backend.ts");
  return ActorBackend.start({ ...o, pages, pageSize, scaling: o.scaling ?? DEFAULT_SCALING });
}
