/* Row-wise and element-wise kernels: RMSNorm, embedding, rotary embedding, SwiGLU, add. */
#include <math.h>
#include <stdlib.h>
#include "common.h"

int moe_rmsnorm(float *out, int64_t ldo, const float *x, int64_t ldx, const void *w,
                int32_t w_dtype, int64_t T, int64_t D, float eps, void *stream) {
  (void)stream;
  CHECK_PTR(out); CHECK_PTR(x); CHECK_PTR(w); CHECK_NONNEG(T); CHECK_POS(D);
  CHECK(w_dtype != MOE_F8E4M3, "moe_rmsnorm: norm weights are BF16 or F32");
  int st = moe_check_dtype(w_dtype, NULL, __func__);
  if (st) return st;
  float *wf = moe_scratch(0, D);
  if (!wf) return moe_fail(MOE_ENOMEM, "moe_rmsnorm: out of memory");
  moe_decode_row(wf, w, NULL, w_dtype, 0, D);
  for (int64_t t = 0; t < T; t++) {
    const float *xr = x + t * ldx;
    float *o = out + t * ldo;
    double ss = 0;
    for (int64_t i = 0; i < D; i++) ss += (double)xr[i] * xr[i];
    float r = 1.0f / sqrtf((float)(ss / (double)D) + eps);
    for (int64_t i = 0; i < D; i++) o[i] = xr[i] * r * wf[i];
  }
  return MOE_OK;
}

int moe_embed(float *out, const int32_t *ids, const void *table, int32_t dtype, int64_t T,
              int64_t D, int64_t vocab, void *stream) {
  (void)stream;
  CHECK_PTR(out); CHECK_PTR(ids); CHECK_PTR(table); CHECK_NONNEG(T); CHECK_POS(D);
  CHECK(dtype != MOE_F8E4M3, "moe_embed: embeddings are BF16 or F32");
  int st = moe_check_dtype(dtype, NULL, __func__);
  if (st) return st;
  for (int64_t t = 0; t < T; t++)
    if (ids[t] < 0 || ids[t] >= vocab)
      return moe_fail(MOE_ERANGE, "moe_embed: token id %d outside the vocabulary [0, %lld)", ids[t],
                      (long long)vocab);
  for (int64_t t = 0; t < T; t++) moe_decode_row(out + t * D, table, NULL, dtype, ids[t], D);
  return MOE_OK;
}

int moe_rope(float *x, int64_t ld_token, int64_t ld_head, int64_t n_heads, int64_t offset,
             const int32_t *positions, const float *inv_freq, int64_t T, int64_t rope_dim,
             void *stream) {
  (void)stream;
  CHECK_PTR(x); CHECK_PTR(positions); CHECK_PTR(inv_freq); CHECK_NONNEG(T); CHECK_POS(n_heads);
  CHECK(rope_dim > 0 && rope_dim % 2 == 0, "moe_rope: rope_dim must be even and > 0");
  for (int64_t t = 0; t < T; t++) {
    for (int64_t i = 0; i < rope_dim / 2; i++) {
      /* model.py: freqs = outer(t, inv_freq) in float32, then polar(): cos/sin of that float. */
      float angle = (float)positions[t] * inv_freq[i];
      float c = (float)cos((double)angle), s = (float)sin((double)angle);
      for (int64_t h = 0; h < n_heads; h++) {
        float *p = x + t * ld_token + h * ld_head + offset + 2 * i;
        float a = p[0], b = p[1];
        p[0] = a * c - b * s;
        p[1] = a * s + b * c;
      }
    }
  }
  return MOE_OK;
}

int moe_silu_mul(float *out, int64_t ldo, const float *g, int64_t ldg, const float *u,
                 int64_t ldu, int64_t T, int64_t I, void *stream) {
  (void)stream;
  CHECK_PTR(out); CHECK_PTR(g); CHECK_PTR(u); CHECK_NONNEG(T); CHECK_POS(I);
  for (int64_t t = 0; t < T; t++) moe_ops->silu_mul(out + t * ldo, g + t * ldg, u + t * ldu, I);
  return MOE_OK;
}

int moe_add(float *y, int64_t ldy, const float *x, int64_t ldx, float alpha, int64_t T,
            int64_t D, void *stream) {
  (void)stream;
  CHECK_PTR(y); CHECK_PTR(x); CHECK_NONNEG(T); CHECK_POS(D);
  for (int64_t t = 0; t < T; t++)
    for (int64_t i = 0; i < D; i++) y[t * ldy + i] += alpha * x[t * ldx + i];
  return MOE_OK;
}
