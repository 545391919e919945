/* Multi-head latent attention over the paged latent cache: the cache holds kv_norm(latent) and
 * the roped shared key in the cache's dtype (moe_kvcache.h); kv_b is absorbed into the query and
 * the output ("absorb"), or expanded per position ("naive"). Both compute the same attention
 * (attend.c). Quantizing a row is scalar code compiled once, so every ISA path stores the same
 * bytes; reading converts in registers (attend.c) or per gathered row (moe_kv_gather). */
#include <math.h>
#include "common.h"
#include "../include/moe_kvcache.h"

int moe_check_kv(int32_t kv_dtype, const float *kv_scale, const char *fn) {
  if (kv_dtype != MOE_F32 && kv_dtype != MOE_BF16 && kv_dtype != MOE_F8E4M3) return moe_fail(MOE_EINVAL, MOE_MSG_KV_DTYPE, fn, kv_dtype);
  if (kv_dtype == MOE_F8E4M3 && !kv_scale) return moe_fail(MOE_EINVAL, MOE_MSG_KV_SCALE, fn);
  return MOE_OK;
}

/* One row of the cache from f32: C latent values (and their tile scales) and dr rope values. */
static void store_row(void *kv, void *pe, float *scale, int32_t dt, int64_t slot, const float *lat,
                      const float *rope, int64_t C, int64_t dr) {
  if (dt == MOE_F32) {
    memcpy((float *)kv + slot * C, lat, (size_t)C * 4);
    memcpy((float *)pe + slot * dr, rope, (size_t)dr * 4);
    return;
  }
  uint16_t *pr = (uint16_t *)pe + slot * dr;
  for (int64_t i = 0; i < dr; i++) pr[i] = moe_kv_bf16(rope[i]);
  if (dt == MOE_BF16) {
    uint16_t *kr = (uint16_t *)kv + slot * C;
    for (int64_t i = 0; i < C; i++) kr[i] = moe_kv_bf16(lat[i]);
    return;
  }
  uint8_t *kr = (uint8_t *)kv + slot * C;
  float *sr = scale + slot * moe_kv_tiles(C);
  for (int64_t b = 0; b * MOE_KV_TILE < C; b++) {
    int64_t c0 = b * MOE_KV_TILE, c1 = c0 + MOE_KV_TILE < C ? c0 + MOE_KV_TILE : C;
    float amax = 0;
    for (int64_t i = c0; i < c1; i++) amax = fabsf(lat[i]) > amax ? fabsf(lat[i]) : amax;
    float s = moe_kv_fp8_scale(amax), inv = 1.0f / s; /* powers of two: both exact */
    sr[b] = s;
    for (int64_t i = c0; i < c1; i++) kr[i] = moe_kv_e4m3(lat[i] * inv);
  }
}

/* One row of the cache back to f32. */
static void load_row(float *lat, float *rope, const void *kv, const void *pe, const float *scale, int32_t dt,
                     int64_t slot, int64_t C, int64_t dr) {
  if (dt == MOE_F32) {
    memcpy(lat, (const float *)kv + slot * C, (size_t)C * 4);
    memcpy(rope, (const float *)pe + slot * dr, (size_t)dr * 4);
    return;
  }
  const uint16_t *pr = (const uint16_t *)pe + slot * dr;
  for (int64_t i = 0; i < dr; i++) rope[i] = bf16_to_f32(pr[i]);
  if (dt == MOE_BF16) {
    const uint16_t *kr = (const uint16_t *)kv + slot * C;
    for (int64_t i = 0; i < C; i++) lat[i] = bf16_to_f32(kr[i]);
    return;
  }
  const uint8_t *kr = (const uint8_t *)kv + slot * C;
  const float *sr = scale + slot * moe_kv_tiles(C);
  for (int64_t i = 0; i < C; i++) lat[i] = moe_e4m3_lut[kr[i]] * sr[i / MOE_KV_TILE];
}

int moe_kv_write(void *kv_cache, void *pe_cache, float *kv_scale, int32_t kv_dtype, const float *latent,
                 int64_t ld_latent, const float *pe, int64_t ld_pe, const int32_t *slots, int64_t T, int64_t C,
                 int64_t dr, int64_t n_slots, void *stream) {
  (void)stream;
  CHECK_PTR(kv_cache); CHECK_PTR(pe_cache); CHECK_PTR(latent); CHECK_PTR(pe); CHECK_PTR(slots);
  CHECK_NONNEG(T); CHECK_NONNEG(n_slots); CHECK_NONNEG(C); CHECK_NONNEG(dr);
  int st = moe_check_kv(kv_dtype, kv_scale, __func__);
  if (st) return st;
  /* Every slot first: a refused call writes nothing. */
  for (int64_t t = 0; t < T; t++)
    CHECK(moe_slot_ok(slots[t], n_slots), MOE_MSG_KV_SLOT, __func__, (long long)slots[t], (long long)n_slots);
  for (int64_t t = 0; t < T; t++)
    store_row(kv_cache, pe_cache, kv_scale, kv_dtype, slots[t], latent + t * ld_latent, pe + t * ld_pe, C, dr);
  return MOE_OK;
}

int moe_kv_gather(float *latent, float *pe, const void *kv_cache, const void *pe_cache, const float *kv_scale,
                  int32_t kv_dtype, const int32_t *block_table, int64_t L, int64_t C, int64_t dr,
                  int64_t page_size, int64_t n_slots, void *stream) {
  (void)stream;
  CHECK_PTR(latent); CHECK_PTR(pe); CHECK_PTR(kv_cache); CHECK_PTR(pe_cache); CHECK_PTR(block_table);
  CHECK_POS(page_size); CHECK_NONNEG(L); CHECK_NONNEG(n_slots); CHECK_NONNEG(C); CHECK_NONNEG(dr);
  int st = moe_check_kv(kv_dtype, kv_scale, __func__);
  if (st) return st;
  for (int64_t b = 0; b * page_size < L; b++)
    CHECK(moe_page_ok(block_table[b], page_size, n_slots), MOE_MSG_KV_PAGE, __func__, (long long)block_table[b], (long long)(n_slots / page_size));
  for (int64_t p = 0; p < L; p++) {
    int64_t slot = (int64_t)block_table[p / page_size] * page_size + p % page_size;
    load_row(latent + p * C, pe + p * dr, kv_cache, pe_cache, kv_scale, kv_dtype, slot, C, dr);
  }
  return MOE_OK;
}

/* kv_b absorbed into the query: per head an NN matmul q[t, h, :dn] x Wkvb[h*(dn+dv) + d, :]
 * (W rows decoded in registers and broadcast-multiplied), parallel over heads and token blocks. */
typedef struct { float *q_lat; const float *q; const void *w; const float *scale; int32_t dtype;
                 int64_t T, H, dn, dr, dv, C, tb; } absorb_job;

static void absorb_q_items(void *p, int64_t i0, int64_t i1) {
  const absorb_job *j = p;
  int64_t nblk = (j->T + j->tb - 1) / j->tb;
  for (int64_t i = i0; i < i1; i++) {
    int64_t h = i / nblk, t0 = (i % nblk) * j->tb, t1 = t0 + j->tb < j->T ? t0 + j->tb : j->T;
    moe_gemm_nn g = {j->q_lat + h * j->C, j->H * j->C, j->q + h * (j->dn + j->dr), j->H * (j->dn + j->dr),
                     j->w, j->C, j->scale, j->dtype, h * (j->dn + j->dv), j->dn, j->C, 0};
    moe_ops->gemm_nn(&g, t0, t1);
  }
}

static void absorb_out_items(void *p, int64_t i0, int64_t i1) {
  const absorb_job *j = p; /* q_lat is the output [T, H*dv], q the attention output o_lat */
  int64_t nblk = (j->T + j->tb - 1) / j->tb;
  for (int64_t i = i0; i < i1; i++) {
    int64_t h = i / nblk, t0 = (i % nblk) * j->tb, t1 = t0 + j->tb < j->T ? t0 + j->tb : j->T;
    moe_gemm_nt g = {j->q_lat + h * j->dv, j->H * j->dv, j->q + h * j->C, j->H * j->C, NULL,
                     j->w, j->C, j->scale, j->dtype, h * (j->dn + j->dv) + j->dn, j->C, 0};
    moe_ops->gemm_nt(&g, t0, t1, 0, j->dv);
  }
}

/* Token blocks large enough that each head's weight slice is read once per ~64 tokens. */
static int64_t token_block(int64_t T) { return T < 64 ? (T > 0 ? T : 1) : 64; }

int moe_mla_absorb_q(float *q_lat, const float *q, const void *wkv_b, const float *scale,
                     int32_t w_dtype, int64_t T, int64_t H, int64_t dn, int64_t dr, int64_t dv,
                     int64_t C, void *stream) {
  (void)stream;
  CHECK_PTR(q_lat); CHECK_PTR(q); CHECK_PTR(wkv_b); CHECK_POS(H); CHECK_POS(dn); CHECK_POS(C);
  CHECK_NONNEG(T); CHECK_NONNEG(dr); CHECK_NONNEG(dv);
  int st = moe_check_dtype(w_dtype, scale, __func__);
  if (st || T == 0) return st;
  absorb_job j = {q_lat, q, wkv_b, scale, w_dtype, T, H, dn, dr, dv, C, token_block(T)};
  moe_trace_weights(wkv_b, H * (dn + dv) * C * moe_dtype_size(w_dtype));
  moe_parallel_for(H * ((T + j.tb - 1) / j.tb), 1, absorb_q_items, &j);
  return MOE_OK;
}

int moe_mla_absorb_out(float *out, const float *o_lat, const void *wkv_b, const float *scale,
                       int32_t w_dtype, int64_t T, int64_t H, int64_t dn, int64_t dv, int64_t C,
                       void *stream) {
  (void)stream;
  CHECK_PTR(out); CHECK_PTR(o_lat); CHECK_PTR(wkv_b); CHECK_POS(H); CHECK_POS(dv); CHECK_POS(C);
  CHECK_NONNEG(T); CHECK_NONNEG(dn);
  int st = moe_check_dtype(w_dtype, scale, __func__);
  if (st || T == 0) return st;
  absorb_job j = {out, o_lat, wkv_b, scale, w_dtype, T, H, dn, 0, dv, C, token_block(T)};
  moe_parallel_for(H * ((T + j.tb - 1) / j.tb), 1, absorb_out_items, &j);
  moe_trace_done(wkv_b); /* kv_b was recorded by absorb_q; its successor is o_proj */
  return MOE_OK;
}
