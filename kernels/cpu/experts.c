/* Grouped SwiGLU experts: each expert's weights are read once per call for all the tokens routed
 * to it. Decode is bound by streaming the active experts' weights, so the work is cut into long
 * contiguous runs of weight rows, spread over the pool:
 *   A: g = W1_e x, u = W3_e x for every active expert (items: 64-row runs of W1_e or W3_e);
 *   h = silu(g) * u (in place of g);
 *   B: y = W2_e h (items: 128-row runs of W2_e);
 *   out[tok] += rw * y, rows in expert order (as model.py's loop), parallel over columns.
 * Activations are gathered through row indices, never copied. Buffers are per-thread scratch
 * (grow-only), so the caller's `scratch` is not needed. */
#include "common.h"

#define RUN_A 64  /* W1/W3 rows per phase-A item */
#define RUN_B 128 /* W2 rows per phase-B item */

typedef struct {
  float *out; int64_t ldo; const float *x; int64_t ldx;
  const int32_t *offsets, *rows; const float *rw;
  const void *const *w1, *const *w3, *const *w2;
  const float *const *s1, *const *s3, *const *s2;
  int32_t dtype; int64_t D, I, total;
  const int32_t *active; /* expert ids with tokens, ascending */
  float *g, *u, *y;      /* [total, I], [total, I], [total, D] */
} experts_job;

static void phase_a(void *p, int64_t i0, int64_t i1) {
  const experts_job *j = p;
  const int64_t runs = (j->I + RUN_A - 1) / RUN_A; /* per matrix */
  for (int64_t i = i0; i < i1; i++) {
    int64_t m = i / runs, e = j->active[m / 2], up = m % 2, n0 = (i % runs) * RUN_A;
    int64_t n1 = n0 + RUN_A < j->I ? n0 + RUN_A : j->I, r0 = j->offsets[e], n = j->offsets[e + 1] - r0;
    const float *const *s = up ? j->s3 : j->s1;
    moe_gemm_nt a = {(up ? j->u : j->g) + r0 * j->I, j->I, j->x, j->ldx, j->rows + r0,
                     up ? j->w3[e] : j->w1[e], j->D, s ? s[e] : NULL, j->dtype, 0, j->D, 0};
    moe_ops->gemm_nt(&a, 0, n, n0, n1);
  }
}

static void phase_b(void *p, int64_t i0, int64_t i1) {
  const experts_job *j = p;
  const int64_t runs = (j->D + RUN_B - 1) / RUN_B;
  for (int64_t i = i0; i < i1; i++) {
    int64_t e = j->active[i / runs], n0 = (i % runs) * RUN_B, n1 = n0 + RUN_B < j->D ? n0 + RUN_B : j->D;
    int64_t r0 = j->offsets[e], n = j->offsets[e + 1] - r0;
    moe_gemm_nt a = {j->y + r0 * j->D, j->D, j->g + r0 * j->I, j->I, NULL,
                     j->w2[e], j->I, j->s2 ? j->s2[e] : NULL, j->dtype, 0, j->I, 0};
    moe_ops->gemm_nt(&a, 0, n, n0, n1);
  }
}

static void silu_rows(void *p, int64_t r0, int64_t r1) {
  const experts_job *j = p;
  for (int64_t r = r0; r < r1; r++) moe_ops->silu_mul(j->g + r * j->I, j->g + r * j->I, j->u + r * j->I, j->I);
}

/* out[rows[r], d] += rw[r] * y[r, d] for r in order, columns [d0, d1) per item. */
static void combine(void *p, int64_t d0, int64_t d1) {
  const experts_job *j = p;
  for (int64_t r = 0; r < j->total; r++) {
    float w = j->rw[r], *o = j->out + (int64_t)j->rows[r] * j->ldo;
    const float *yr = j->y + r * j->D;
    for (int64_t d = d0; d < d1; d++) o[d] += yr[d] * w;
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
  int64_t n_active = 0;
  for (int64_t e = 0; e < E; e++) {
    int64_t n = offsets[e + 1] - offsets[e];
    CHECK(n >= 0, "moe_experts: offsets must not decrease (expert %lld)", (long long)e);
    if (n > 0) {
      n_active++;
      CHECK(w1[e] && w3[e] && w2[e], "moe_experts: expert %lld has tokens but no weights", (long long)e);
      int st = moe_check_dtype(w_dtype, s1 ? s1[e] : NULL, __func__);
      if (!st && w_dtype == MOE_F8E4M3 && !(s3 && s3[e] && s2 && s2[e]))
        st = moe_fail(MOE_EINVAL, "moe_experts: expert %lld lacks F8 scales", (long long)e);
      if (st) return st;
    }
  }
  const int64_t total = offsets[E];
  if (total == 0) return MOE_OK;
  CHECK_PTR(rows); CHECK_PTR(rw);
  CHECK(ldx >= D && ldo >= D, "moe_experts: row strides below D");
  float *g = moe_scratch(0, total * I), *u = moe_scratch(1, total * I), *y = moe_scratch(2, total * D);
  int32_t *active = (int32_t *)moe_scratch(3, n_active);
  if (!g || !u || !y || !active) return moe_fail(MOE_ENOMEM, "moe_experts: out of memory");
  for (int64_t e = 0, a = 0; e < E; e++)
    if (offsets[e + 1] > offsets[e]) active[a++] = (int32_t)e;
  experts_job j = {out, ldo, x, ldx, offsets, rows, rw, w1, w3, w2, s1, s3, s2, w_dtype, D, I, total, active, g, u, y};
  moe_parallel_for(n_active * 2 * ((I + RUN_A - 1) / RUN_A), 1, phase_a, &j);
  moe_parallel_for(total, 64, silu_rows, &j);
  moe_parallel_for(n_active * ((D + RUN_B - 1) / RUN_B), 1, phase_b, &j);
  moe_parallel_for(D, total >= 16 ? 64 : D, combine, &j);
  return MOE_OK;
}
