// `--kv-cache-dtype auto|f32|bf16|fp8`: the latent KV cache's dtype, a flag of every command that
// runs the model (serve, generate, logits, perplexity). `auto` is the compact default the
// measurements chose (src/model/kvcache.ts, AUTO_KV_DTYPE); f32 gives the reference's numbers,
// which is what the golden checks ask for.
import { AUTO_KV_DTYPE, KV_CACHE_DTYPES, type KvCacheDtype } from "../model/kvcache.ts";
import { type Flag, UsageError } from "./spec.ts";

export const KV_CACHE_DTYPE_FLAG = {
  type: "string", arg: KV_CACHE_DTYPES.join("|"),
  help: `latent KV cache dtype (default auto = ${AUTO_KV_DTYPE}; f32 keeps the reference's numbers)`,
} as const satisfies Flag;

export function kvCacheDtype(s: string | undefined): KvCacheDtype {
  if (s === undefined) return "auto";
  if (!(KV_CACHE_DTYPES as readonly string[]).includes(s)) throw new UsageError(`--kv-cache-dtype ${s}: expected one of ${KV_CACHE_DTYPES.join(", ")}`);
  return s as KvCacheDtype;
}
