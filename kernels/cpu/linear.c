/* Matmul against a stored weight: out[t, n] = x[t, :] . W[row0 + n, :].
 * Each weight row is decoded once into f32 (F8 times its block scale, exactly the reference's
 * dequantisation) and reused for every token, so a batch reads the weights once. */
#include <stdlib.h>
#include "common.h"

typedef struct {
  float *out; int64_t ldo; const float *x; int64_t ldx;
  const void *w; const float *scale; int32_t dtype; int64_t row0, T, K;
} linear_ctx;

static void linear_rows(void *p, int64_t n0, int64_t n1) {
  linear_ctx *c = p;
  float stackbuf[4096];
  float *row = c->K <= 4096 ? stackbuf : malloc((size_t)c->K * 4);
  for (int64_t n = n0; n < n1; n++) {
    moe_decode_row(row, c->w, c->scale, c->dtype, c->row0 + n, c->K);
    for (int64_t t = 0; t < c->T; t++) c->out[t * c->ldo + n] = moe_dot(c->x + t * c->ldx, row, c->K);
  }
  if (row != stackbuf) free(row);
}

int moe_linear_impl(float *out, int64_t ldo, const float *x, int64_t ldx, const void *w,
                    const float *scale, int32_t dtype, int64_t row0, int64_t T, int64_t N,
                    int64_t K) {
  linear_ctx c = {out, ldo, x, ldx, w, scale, dtype, row0, T, K};
  moe_parallel_for(N, 8, linear_rows, &c);
  return MOE_OK;
}

int moe_linear(float *out, int64_t ldo, const float *x, int64_t ldx, const void *w,
               const float *scale, int32_t w_dtype, int64_t row0, int64_t T, int64_t N,
               int64_t K, void *stream) {
  (void)stream;
  CHECK_PTR(out); CHECK_PTR(x); CHECK_PTR(w);
  CHECK_NONNEG(T); CHECK_POS(N); CHECK_POS(K); CHECK_NONNEG(row0);
  CHECK(ldx >= K && ldo >= N, "moe_linear: row strides (ldx %lld, ldo %lld) below K %lld / N %lld",
        (long long)ldx, (long long)ldo, (long long)K, (long long)N);
  int st = moe_check_dtype(w_dtype, scale, __func__);
  if (st) return st;
  return moe_linear_impl(out, ldo, x, ldx, w, scale, w_dtype, row0, T, N, K);
}
