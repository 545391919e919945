// Builds the model backend a command asks for: the actors of a scaling config, or the plain
// in-thread model (`--scaling direct`).
import type { ModelBackend } from "./backend.ts";
import { DirectBackend } from "./direct.ts";

export interface BackendOptions {
  model: string;
  scaling?: string; // a scaling config file, or "direct"
  pages?: number;
  pageSize?: number;
  mtp?: boolean;
  kvTokens?: number; // KV cache size in tokens per attention replica
}

export async function createBackend(o: BackendOptions): Promise<ModelBackend> {
  const pageSize = o.pageSize ?? 16;
  const pages = o.pages ?? Math.ceil((o.kvTokens ?? 8192) / pageSize);
  if (!o.scaling || o.scaling === "direct") return new DirectBackend(o.model, { pages, pageSize, mtp: o.mtp });
  const { ActorBackend } = await import("./actor-backend.ts");
  return ActorBackend.start({ ...o, pages, pageSize, scaling: o.scaling });
}
