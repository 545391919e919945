/* Grouped SwiGLU experts: each expert's weights are read once for all the tokens routed to it. */
#include <stdlib.h>
#include "common.h"

int moe_linear_impl(float *out, int64_t ldo, const float *x, int64_t ldx, const void *w,
                    const float *scale, int32_t dtype, int64_t row0, int64_t T, int64_t N,
                    int64_t K);

int moe_experts(float *out, int64_t ldo, const float *x, int64_t ldx, const int32_t *offsets,
                const int32_t *rows, const float *rw, const void *const *w1,
                const float *const *s1, const void *const *w3, const float *const *s3,
                const void *const *w2, const float *const *s2, int32_t w_dtype, int64_t E,
                int64_t D, int64_t I, float *scratch, void *stream) {
  (void)stream;
  CHECK_PTR(out); CHECK_PTR(x); CHECK_PTR(offsets); CHECK_PTR(w1); CHECK_PTR(w3); CHECK_PTR(w2);
  CHECK_POS(E); CHECK_POS(D); CHECK_POS(I);
  CHECK(offsets[0] == 0, "moe_experts: offsets[0] must be 0");
  int64_t max_rows = 0;
  for (int64_t e = 0; e < E; e++) {
    int64_t n = offsets[e + 1] - offsets[e];
    CHECK(n >= 0, "moe_experts: offsets must not decrease (expert %lld)", (long long)e);
    if (n > max_rows) max_rows = n;
    if (n > 0) {
      CHECK(w1[e] && w3[e] && w2[e], "moe_experts: expert %lld has tokens but no weights", (long long)e);
      int st = moe_check_dtype(w_dtype, s1 ? s1[e] : NULL, __func__);
      if (!st && w_dtype == MOE_F8E4M3 && !(s3 && s3[e] && s2 && s2[e]))
        st = moe_fail(MOE_EINVAL, "moe_experts: expert %lld lacks F8 scales", (long long)e);
      if (st) return st;
    }
  }
  if (max_rows == 0) return MOE_OK;
  CHECK_PTR(rows); CHECK_PTR(rw);
  float *buf = scratch ? scratch : malloc((size_t)(max_rows * (2 * D + 3 * I)) * 4);
  if (!buf) return moe_fail(MOE_ENOMEM, "moe_experts: out of memory");
  float *xa = buf, *y = xa + max_rows * D, *g = y + max_rows * D, *u = g + max_rows * I,
        *h = u + max_rows * I;
  for (int64_t e = 0; e < E; e++) {
    int64_t n = offsets[e + 1] - offsets[e];
    if (n == 0) continue;
    const int32_t *r = rows + offsets[e];
    for (int64_t i = 0; i < n; i++) memcpy(xa + i * D, x + (int64_t)r[i] * ldx, (size_t)D * 4);
    moe_linear_impl(g, I, xa, D, w1[e], s1 ? s1[e] : NULL, w_dtype, 0, n, I, D);
    moe_linear_impl(u, I, xa, D, w3[e], s3 ? s3[e] : NULL, w_dtype, 0, n, I, D);
    moe_silu_mul(h, I, g, I, u, I, n, I, NULL);
    moe_linear_impl(y, D, h, I, w2[e], s2 ? s2[e] : NULL, w_dtype, 0, n, D, I);
    for (int64_t i = 0; i < n; i++) {
      float a = rw[offsets[e] + i];
      float *o = out + (int64_t)r[i] * ldo;
      for (int64_t d = 0; d < D; d++) o[d] += y[i * D + d] * a;
    }
  }
  if (!scratch) free(buf);
  return MOE_OK;
}
