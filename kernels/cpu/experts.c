/* Grouped SwiGLU experts: each expert's weights are read once per call for all the tokens routed
 * to it. Two parallel phases over output rows, each looping over the experts inside:
 *   A: h[rows of e] = silu(W1_e x) * (W3_e x), split over the I rows of W1/W3;
 *   B: out[tok] += rw * W2_e h, split over the D rows of W2, experts in order (as model.py).
 * Splitting rows rather than experts keeps both threads busy at decode, where a layer has only
 * k experts with one token each, and every output element is written by one thread. Activations
 * are gathered through row indices, never copied. The caller's scratch is not needed. */
#include <stdlib.h>
#include "common.h"

#define ROWS_A 16 /* I rows per phase-A item */
#define ROWS_B 32 /* D rows per phase-B item */

typedef struct {
  float *out; int64_t ldo; const float *x; int64_t ldx;
  const int32_t *offsets, *rows; const float *rw;
  const void *const *w1, *const *w3, *const *w2;
  const float *const *s1, *const *s3, *const *s2;
  int32_t dtype; int64_t E, D, I, max_rows;
  float *h; /* [offsets[E], I] */
} experts_job;

static void phase_a(void *p, int64_t b, int64_t e_) {
  const experts_job *j = p;
  int64_t i0 = b * ROWS_A, i1 = e_ * ROWS_A < j->I ? e_ * ROWS_A : j->I, ci = i1 - i0;
  float *g = moe_scratch(1, j->max_rows * ci), *u = moe_scratch(2, j->max_rows * ci);
  if (!g || !u) return;
  for (int64_t e = 0; e < j->E; e++) {
    int64_t r0 = j->offsets[e], n = j->offsets[e + 1] - r0;
    if (n == 0) continue;
    moe_gemm_nt a = {g, ci, j->x, j->ldx, j->rows + r0, j->w1[e], j->D, j->s1 ? j->s1[e] : NULL, j->dtype, i0, j->D, 0};
    moe_ops->gemm_nt(&a, 0, n, 0, ci);
    a.out = u; a.w = j->w3[e]; a.scale = j->s3 ? j->s3[e] : NULL;
    moe_ops->gemm_nt(&a, 0, n, 0, ci);
    for (int64_t t = 0; t < n; t++) moe_ops->silu_mul(j->h + (r0 + t) * j->I + i0, g + t * ci, u + t * ci, ci);
  }
}

static void phase_b(void *p, int64_t b, int64_t e_) {
  const experts_job *j = p;
  int64_t d0 = b * ROWS_B, d1 = e_ * ROWS_B < j->D ? e_ * ROWS_B : j->D, cd = d1 - d0;
  float *y = moe_scratch(1, j->max_rows * cd);
  if (!y) return;
  for (int64_t e = 0; e < j->E; e++) {
    int64_t r0 = j->offsets[e], n = j->offsets[e + 1] - r0;
    if (n == 0) continue;
    moe_gemm_nt a = {y, cd, j->h + r0 * j->I, j->I, NULL, j->w2[e], j->I, j->s2 ? j->s2[e] : NULL, j->dtype, d0, j->I, 0};
    moe_ops->gemm_nt(&a, 0, n, 0, cd);
    for (int64_t t = 0; t < n; t++) {
      float w = j->rw[r0 + t], *o = j->out + (int64_t)j->rows[r0 + t] * j->ldo + d0;
      const float *yt = y + t * cd;
      for (int64_t d = 0; d < cd; d++) o[d] += yt[d] * w;
    }
  }
}

int moe_experts(float *out, int64_t ldo, const float *x, int64_t ldx, const int32_t *offsets,
                const int32_t *rows, const float *rw, const void *const *w1,
                const float *const *s1, const void *const *w3, const float *const *s3,
                const void *const *w2, const float *const *s2, int32_t w_dtype, int64_t E,
                int64_t D, int64_t I, float *scratch, void *stream) {
  (void)stream; (void)scratch;
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
  CHECK(ldx >= D && ldo >= D, "moe_experts: row strides below D");
  float *h = moe_scratch(0, (int64_t)offsets[E] * I);
  if (!h) return moe_fail(MOE_ENOMEM, "moe_experts: out of memory");
  experts_job j = {out, ldo, x, ldx, offsets, rows, rw, w1, w3, w2, s1, s3, s2, w_dtype, E, D, I, max_rows, h};
  moe_parallel_for((I + ROWS_A - 1) / ROWS_A, 1, phase_a, &j);
  moe_parallel_for((D + ROWS_B - 1) / ROWS_B, 1, phase_b, &j);
  return MOE_OK;
}
