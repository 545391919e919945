/* The compact latent cache's number formats, shared by every backend so the CPU library and the
 * device builds store the same bytes for the same latent (integer ops only: no rounding mode,
 * FMA contraction or fast-math flag can change them).
 *
 * A cache of kv_dtype (moe_kernels.h, moe_kv_write) holds per slot:
 * - MOE_F32:    latent [C] f32,  rope key [dr] f32 (the reference's numbers, for the goldens);
 * - MOE_BF16:   latent [C] bf16, rope key [dr] bf16 (round to nearest even; the reference's dtype);
 * - MOE_F8E4M3: latent [C] e4m3 codes with one f32 scale per 128-channel tile of the row
 *   (kv_scale [n_slots, ceil(C/128)]), rope key [dr] bf16: DeepSeek's FlashMLA FP8 cache (656
 *   bytes per token at C=512, dr=64). The rope key stays bf16: it is 1/9 of the row and carries
 *   the position, which a 3-bit mantissa would blur. Scales are per token row, not per page: a
 *   row is complete when it is written (decode appends one row at a time), so its scale never
 *   has to change when a later row of the same page is larger, and rewriting a row (a retried
 *   step, a recomputed cache) gives the same bytes. Scales are powers of two (FlashMLA's UE8M0):
 *   x / scale is exact, so only the e4m3 rounding itself loses bits. */
#ifndef MOE_KVCACHE_H
#define MOE_KVCACHE_H
#include <stdint.h>
#include <string.h>
#include "moe_checks.h"

#define MOE_KV_TILE 128 /* latent channels per fp8 scale */

MOE_CHECK_FN uint32_t moe_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
MOE_CHECK_FN float moe_bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* f32 -> bf16, round to nearest even; NaN stays a (quiet) NaN. */
MOE_CHECK_FN uint16_t moe_kv_bf16(float f) {
  uint32_t u = moe_f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* The power-of-two scale of a tile whose largest magnitude is amax: the smallest 2^e with
 * amax <= 448 * 2^e (448 = 1.75 * 2^8 is e4m3fn's largest finite value). 1 for an all-zero tile. */
MOE_CHECK_FN float moe_kv_fp8_scale(float amax) {
  uint32_t u = moe_f32_bits(amax) & 0x7fffffffu;
  if (u < 0x00800000u) return 1.0f; /* zero or subnormal: the codes round to 0 at any scale */
  if (u >= 0x7f800000u) return moe_bits_f32(0x7f000000u); /* inf/NaN: the largest scale (codes saturate) */
  int32_t e = (int32_t)(u >> 23) - 127 - 8 + ((u & 0x7fffffu) > 0x600000u); /* mantissa above 1.75 */
  if (e < -126) e = -126;
  if (e > 127) e = 127;
  return moe_bits_f32((uint32_t)(e + 127) << 23);
}

/* f32 -> e4m3fn code, round to nearest even, saturating at +-448 (0x7f/0xff, NaN, never made). */
MOE_CHECK_FN uint8_t moe_kv_e4m3(float f) {
  uint32_t u = moe_f32_bits(f), sign = (u >> 24) & 0x80u;
  u &= 0x7fffffffu;
  if (u > 0x7f800000u) return (uint8_t)sign; /* NaN: 0 rather than a NaN code */
  if (u >= 0x43e00000u) return (uint8_t)(sign | 0x7eu); /* >= 448 */
  uint32_t code;
  if (u >= 0x3c800000u) { /* >= 2^-6: normal e4m3, keep 3 of the 23 mantissa bits */
    code = ((u + 0x7ffffu + ((u >> 20) & 1u)) >> 20) - (120u << 3);
    if (code > 0x7eu) code = 0x7eu;
  } else { /* subnormal e4m3: a multiple of 2^-9 (8 of them round up to 2^-6, code 8) */
    uint32_t ef = u >> 23, mf = (u & 0x7fffffu) | 0x800000u, shift = 141u - ef;
    if (ef == 0 || shift > 24u) code = 0;
    else code = (mf + (1u << (shift - 1)) - 1u + ((mf >> shift) & 1u)) >> shift;
  }
  return (uint8_t)(sign | code);
}

/* Bytes of one cached latent element and of one rope element for a kv_dtype. */
MOE_CHECK_FN int64_t moe_kv_elem_bytes(int32_t kv_dtype) { return kv_dtype == 0 ? 4 : kv_dtype == 1 ? 2 : 1; }
MOE_CHECK_FN int64_t moe_kv_pe_bytes(int32_t kv_dtype) { return kv_dtype == 0 ? 4 : 2; }
MOE_CHECK_FN int64_t moe_kv_tiles(int64_t C) { return (C + MOE_KV_TILE - 1) / MOE_KV_TILE; }

#define MOE_MSG_KV_DTYPE "%s: kv_dtype %d is not MOE_F32, MOE_BF16 or MOE_F8E4M3"
#define MOE_MSG_KV_SCALE "%s: an MOE_F8E4M3 cache needs kv_scale"

#endif
