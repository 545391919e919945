// `--kv-cache-dtype auto|f32|bf16|fp8`: the latent KV cache's dtype, a flag of every command that
// runs the model (serve, generate, logits, perplexity). Without the flag the cache is f32: every
// command gives the reference's numbers on any checkpoint (on random weights an fp8 cache moves
// near-tied expert choices and so greedy tokens). `auto` is the compact dtype the measurements
// chose (src/model/kvcache.ts, AUTO_KV_DTYPE) for those who trade exactness for memory.
import { AUTO_KV_DTYPE, KV_CACHE_DTYPES, type KvCacheDtype } from "../model/kvcache.ts";
import { type Flag, UsageError } from "./spec.ts";

export const KV_CACHE_DTYPE_FLAG = {
  type: "string", arg: KV_CACHE_DTYPES.join("|"),
  help: `latent KV cache dtype (default f32: the reference's numbers; auto = ${AUTO_KV_DTYPE}, the compact choice)`,
} as const satisfies Flag;

export function kvCacheDtype(s: string | undefined): KvCacheDtype {
  if (s === undefined) return "f32";
  if (!(KV_CACHE_DTYPES as readonly string[]).includes(s)) throw new UsageError(`--kv-cache-dtype ${s}: expected one of ${KV_CACHE_DTYPES.join(", ")}`);
  return s as KvCacheDtype;
}
