/* Multi-head latent attention over the paged latent cache: the cache holds kv_norm(latent) and
 * the roped shared key; kv_b is absorbed into the query and the output ("absorb"), or expanded
 * per position ("naive"). Both compute the same attention. */
#include <math.h>
#include <stdlib.h>
#include "common.h"

int moe_kv_write(float *kv_cache, float *pe_cache, const float *latent, int64_t ld_latent,
                 const float *pe, int64_t ld_pe, const int32_t *slots, int64_t T, int64_t C,
                 int64_t dr, void *stream) {
  (void)stream;
  CHECK_PTR(kv_cache); CHECK_PTR(pe_cache); CHECK_PTR(latent); CHECK_PTR(pe); CHECK_PTR(slots);
  for (int64_t t = 0; t < T; t++) {
    CHECK(slots[t] >= 0, "moe_kv_write: negative slot %d", slots[t]);
    memcpy(kv_cache + (int64_t)slots[t] * C, latent + t * ld_latent, (size_t)C * 4);
    memcpy(pe_cache + (int64_t)slots[t] * dr, pe + t * ld_pe, (size_t)dr * 4);
  }
  return MOE_OK;
}

int moe_kv_gather(float *latent, float *pe, const float *kv_cache, const float *pe_cache,
                  const int32_t *block_table, int64_t L, int64_t C, int64_t dr,
                  int64_t page_size, void *stream) {
  (void)stream;
  CHECK_PTR(latent); CHECK_PTR(pe); CHECK_PTR(kv_cache); CHECK_PTR(pe_cache); CHECK_PTR(block_table);
  CHECK_POS(page_size);
  for (int64_t p = 0; p < L; p++) {
    int64_t slot = (int64_t)block_table[p / page_size] * page_size + p % page_size;
    memcpy(latent + p * C, kv_cache + slot * C, (size_t)C * 4);
    memcpy(pe + p * dr, pe_cache + slot * dr, (size_t)dr * 4);
  }
  return MOE_OK;
}

int moe_mla_absorb_q(float *q_lat, const float *q, const void *wkv_b, const float *scale,
                     int32_t w_dtype, int64_t T, int64_t H, int64_t dn, int64_t dr, int64_t dv,
                     int64_t C, void *stream) {
  (void)stream;
  CHECK_PTR(q_lat); CHECK_PTR(q); CHECK_PTR(wkv_b); CHECK_POS(H); CHECK_POS(dn); CHECK_POS(C);
  int st = moe_check_dtype(w_dtype, scale, __func__);
  if (st) return st;
  float *row = malloc((size_t)C * 4);
  if (!row) return moe_fail(MOE_ENOMEM, "moe_mla_absorb_q: out of memory");
  memset(q_lat, 0, (size_t)(T * H * C) * 4);
  for (int64_t h = 0; h < H; h++)
    for (int64_t d = 0; d < dn; d++) {
      moe_decode_row(row, wkv_b, scale, w_dtype, h * (dn + dv) + d, C);
      for (int64_t t = 0; t < T; t++) {
        float a = q[(t * H + h) * (dn + dr) + d];
        float *o = q_lat + (t * H + h) * C;
        for (int64_t c = 0; c < C; c++) o[c] += a * row[c];
      }
    }
  free(row);
  return MOE_OK;
}

int moe_linear_impl(float *out, int64_t ldo, const float *x, int64_t ldx, const void *w,
                    const float *scale, int32_t dtype, int64_t row0, int64_t T, int64_t N,
                    int64_t K);

int moe_mla_absorb_out(float *out, const float *o_lat, const void *wkv_b, const float *scale,
                       int32_t w_dtype, int64_t T, int64_t H, int64_t dn, int64_t dv, int64_t C,
                       void *stream) {
  (void)stream;
  CHECK_PTR(out); CHECK_PTR(o_lat); CHECK_PTR(wkv_b); CHECK_POS(H); CHECK_POS(dv); CHECK_POS(C);
  int st = moe_check_dtype(w_dtype, scale, __func__);
  if (st) return st;
  for (int64_t h = 0; h < H; h++)
    moe_linear_impl(out + h * dv, H * dv, o_lat + h * C, H * C, wkv_b, scale, w_dtype,
                    h * (dn + dv) + dn, T, dv, C);
  return MOE_OK;
}

/* p[0..n) <- softmax(p[0..n)) in place. */
static void softmax_inplace(float *p, int64_t n) {
  float m = p[0];
  for (int64_t i = 1; i < n; i++) m = p[i] > m ? p[i] : m;
  float z = 0;
  for (int64_t i = 0; i < n; i++) z += (p[i] = expf(p[i] - m));
  for (int64_t i = 0; i < n; i++) p[i] /= z;
}

int moe_mla_attend(float *o_lat, const float *q_lat, const float *q, const float *kv_cache,
                   const float *pe_cache, const int32_t *block_tables, int64_t max_blocks,
                   const int32_t *cu_q, const int32_t *ctx_len, int64_t S, int64_t H, int64_t C,
                   int64_t dn, int64_t dr, int64_t page_size, float softmax_scale, void *stream) {
  (void)stream;
  CHECK_PTR(o_lat); CHECK_PTR(q_lat); CHECK_PTR(q); CHECK_PTR(kv_cache); CHECK_PTR(pe_cache);
  CHECK_PTR(block_tables); CHECK_PTR(cu_q); CHECK_PTR(ctx_len); CHECK_POS(page_size);
  int64_t max_ctx = 0;
  for (int64_t s = 0; s < S; s++) {
    int64_t n = cu_q[s + 1] - cu_q[s];
    CHECK(n >= 0 && n <= ctx_len[s], "moe_mla_attend: sequence %lld has %lld queries but %d cached positions", (long long)s, (long long)n, ctx_len[s]);
    CHECK(ctx_len[s] <= max_blocks * page_size, "moe_mla_attend: sequence %lld overflows its block table", (long long)s);
    if (ctx_len[s] > max_ctx) max_ctx = ctx_len[s];
  }
  float *p = malloc((size_t)(max_ctx > 0 ? max_ctx : 1) * 4);
  if (!p) return moe_fail(MOE_ENOMEM, "moe_mla_attend: out of memory");
  for (int64_t s = 0; s < S; s++) {
    const int32_t *bt = block_tables + s * max_blocks;
    int64_t n = cu_q[s + 1] - cu_q[s];
    for (int64_t j = 0; j < n; j++) {
      int64_t t = cu_q[s] + j, pos = ctx_len[s] - n + j;
      for (int64_t h = 0; h < H; h++) {
        const float *ql = q_lat + (t * H + h) * C, *qp = q + (t * H + h) * (dn + dr) + dn;
        for (int64_t i = 0; i <= pos; i++) {
          int64_t slot = (int64_t)bt[i / page_size] * page_size + i % page_size;
          p[i] = (moe_dot(ql, kv_cache + slot * C, C) + moe_dot(qp, pe_cache + slot * dr, dr)) * softmax_scale;
        }
        softmax_inplace(p, pos + 1);
        float *o = o_lat + (t * H + h) * C;
        memset(o, 0, (size_t)C * 4);
        for (int64_t i = 0; i <= pos; i++) {
          const float *kv = kv_cache + ((int64_t)bt[i / page_size] * page_size + i % page_size) * C;
          for (int64_t c = 0; c < C; c++) o[c] += p[i] * kv[c];
        }
      }
    }
  }
  free(p);
  return MOE_OK;
}

int moe_mla_attend_naive(float *out, const float *q, const float *kv, const float *k_pe,
                         int64_t T, int64_t L, int64_t q_pos0, int64_t H, int64_t dn, int64_t dr,
                         int64_t dv, float softmax_scale, void *stream) {
  (void)stream;
  CHECK_PTR(out); CHECK_PTR(q); CHECK_PTR(kv); CHECK_PTR(k_pe); CHECK_POS(H);
  CHECK(q_pos0 + T <= L, "moe_mla_attend_naive: queries reach position %lld beyond %lld keys", (long long)(q_pos0 + T), (long long)L);
  float *p = malloc((size_t)(L > 0 ? L : 1) * 4);
  if (!p) return moe_fail(MOE_ENOMEM, "moe_mla_attend_naive: out of memory");
  int64_t ldkv = H * (dn + dv);
  for (int64_t t = 0; t < T; t++) {
    int64_t pos = q_pos0 + t;
    for (int64_t h = 0; h < H; h++) {
      const float *qh = q + (t * H + h) * (dn + dr);
      for (int64_t i = 0; i <= pos; i++)
        p[i] = (moe_dot(qh, kv + i * ldkv + h * (dn + dv), dn) + moe_dot(qh + dn, k_pe + i * dr, dr)) * softmax_scale;
      softmax_inplace(p, pos + 1);
      float *o = out + (t * H + h) * dv;
      memset(o, 0, (size_t)dv * 4);
      for (int64_t i = 0; i <= pos; i++) {
        const float *v = kv + i * ldkv + h * (dn + dv) + dn;
        for (int64_t c = 0; c < dv; c++) o[c] += p[i] * v[c];
      }
    }
  }
  free(p);
  return MOE_OK;
}
