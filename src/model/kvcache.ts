// The paged latent cache of one MLA layer: kv_norm(latent) [pages, pageSize, C] and the roped
// shared key [pages, pageSize, dr]. Pages are handed out by the engine's block books. Stored as
// `dtype` says (kernels/include/moe_kvcache.h lays the formats out):
// - f32: both parts float32, the reference's numbers (the goldens are fp32 outputs, so this is
//   what a runner gets unless asked otherwise);
// - bf16: both parts bfloat16, rounded to nearest even (the reference model.py's cache dtype);
// - fp8: the latent as e4m3 with one power-of-two f32 scale per token row and 128-channel tile,
//   the rope key bf16 (DeepSeek's FlashMLA FP8 cache: 656 bytes a token at C=512, dr=64).
// The attention kernels read the compact rows and convert them as they go.
import type { KvCacheArrays, KvDtype } from "../kernels/kernels.ts";

export type { KvDtype };
/** What `--kv-cache-dtype` accepts: a dtype, or `auto` (AUTO_KV_DTYPE). */
export const KV_CACHE_DTYPES = ["auto", "f32", "bf16", "fp8"] as const;
export type KvCacheDtype = (typeof KV_CACHE_DTYPES)[number];

/** The dtype `auto` stands for, chosen by bytes per token and fortune-dsv3's perplexity over its
 * 81,920-token validation stream (README, "A compact KV cache"): f32 69.9909, bf16 69.9978
 * (+0.010%), fp8 69.9951 (+0.006%), and greedy 100-token completions unchanged. Neither compact
 * dtype costs a measurable amount of perplexity, so the smaller wins: fp8 is 0.28x f32's bytes
 * (656 against 2304 a token and layer at 671B; 0.57x bf16's), i.e. 3.5x the tokens in the same
 * memory. */
export const AUTO_KV_DTYPE: KvDtype = "fp8";

export function resolveKvDtype(d: KvCacheDtype | undefined): KvDtype {
  return d === undefined ? "f32" : d === "auto" ? AUTO_KV_DTYPE : d;
}

const TILE = 128; // latent channels per fp8 scale (MOE_KV_TILE)

export class LatentCache implements KvCacheArrays {
  readonly kv: Float32Array | Uint16Array | Uint8Array; // [pages * pageSize, C]
  readonly pe: Float32Array | Uint16Array; // [pages * pageSize, dr]
  readonly scale: Float32Array | null; // fp8: [pages * pageSize, ceil(C / 128)]

  constructor(readonly pages: number, readonly pageSize: number, readonly C: number, readonly dr: number,
              readonly dtype: KvDtype = "f32") {
    const rows = pages * pageSize;
    this.kv = dtype === "f32" ? new Float32Array(rows * C) : dtype === "bf16" ? new Uint16Array(rows * C) : new Uint8Array(rows * C);
    this.pe = dtype === "f32" ? new Float32Array(rows * dr) : new Uint16Array(rows * dr);
    this.scale = dtype === "fp8" ? new Float32Array(rows * Math.ceil(C / TILE)) : null;
  }

  /** Bytes one cached token takes in one layer. */
  static bytesPerToken(C: number, dr: number, dtype: KvDtype = "f32"): number {
    if (dtype === "f32") return (C + dr) * 4;
    if (dtype === "bf16") return (C + dr) * 2;
    return C + 4 * Math.ceil(C / TILE) + 2 * dr;
  }
}
