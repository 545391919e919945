/* The DeepSeek-V3 router gate (noaux_tc): sigmoid scores, the correction bias used only to
 * choose, group-limited top-k by the sum of each group's top-2 biased scores, weights from the
 * unbiased scores. */
#include <math.h>
#include <stdlib.h>
#include "common.h"

/* Index of the largest v[i] among allowed ones (lowest index on ties); -1 if none. */
static int64_t best(const float *v, const unsigned char *taken, int64_t n) {
  int64_t b = -1;
  for (int64_t i = 0; i < n; i++)
    if (!taken[i] && (b < 0 || v[i] > v[b])) b = i;
  return b;
}

static int gate_token(int32_t *ids, float *weights, const float *scores, const float *bias,
                      float *biased, float *group, unsigned char *taken, int64_t E,
                      int64_t n_group, int64_t topk_group, int64_t k, int32_t norm_topk,
                      float route_scale) {
  for (int64_t e = 0; e < E; e++) biased[e] = bias ? scores[e] + bias[e] : scores[e];
  if (n_group > 1) {
    int64_t per = E / n_group;
    for (int64_t g = 0; g < n_group; g++) {
      const float *s = biased + g * per;
      if (!bias) {
        float m = s[0];
        for (int64_t i = 1; i < per; i++) m = s[i] > m ? s[i] : m;
        group[g] = m;
      } else {
        float a = -INFINITY, b = -INFINITY; /* top two */
        for (int64_t i = 0; i < per; i++) {
          if (s[i] > a) { b = a; a = s[i]; } else if (s[i] > b) b = s[i];
        }
        group[g] = per > 1 ? a + b : a;
      }
    }
    memset(taken, 0, (size_t)n_group);
    for (int64_t j = 0; j < topk_group; j++) taken[best(group, taken, n_group)] = 1;
    for (int64_t g = 0; g < n_group; g++)
      if (!taken[g])
        for (int64_t i = 0; i < per; i++) biased[g * per + i] = -INFINITY;
  }
  memset(taken, 0, (size_t)E);
  float sum = 0;
  for (int64_t j = 0; j < k; j++) {
    int64_t e = best(biased, taken, E);
    taken[e] = 1;
    ids[j] = (int32_t)e;
    weights[j] = scores[e];
    sum += scores[e];
  }
  for (int64_t j = 0; j < k; j++) weights[j] = (norm_topk ? weights[j] / sum : weights[j]) * route_scale;
  return MOE_OK;
}

int moe_gate(int32_t *ids, float *weights, const float *x, int64_t ldx, const void *w,
             int32_t w_dtype, const float *bias, int64_t T, int64_t D, int64_t E, int64_t n_group,
             int64_t topk_group, int64_t k, int32_t score_func, int32_t norm_topk,
             float route_scale, void *stream) {
  (void)stream;
  CHECK_PTR(ids); CHECK_PTR(weights); CHECK_PTR(x); CHECK_PTR(w);
  CHECK(ldx >= D, "moe_gate: ldx %lld below D %lld", (long long)ldx, (long long)D);
  CHECK_NONNEG(T); CHECK_POS(D); CHECK_POS(E); CHECK_POS(n_group); CHECK_POS(k);
  CHECK(E % n_group == 0, "moe_gate: %lld experts do not split into %lld groups", (long long)E, (long long)n_group);
  CHECK(topk_group >= 1 && topk_group <= n_group, "moe_gate: topk_group %lld outside [1, %lld]", (long long)topk_group, (long long)n_group);
  CHECK(k <= topk_group * (E / n_group), "moe_gate: k %lld exceeds the experts of the kept groups", (long long)k);
  CHECK(score_func == MOE_SIGMOID || score_func == MOE_SOFTMAX, "moe_gate: unknown score function %d", score_func);
  int st = moe_check_dtype(w_dtype, NULL, __func__);
  if (st) return st;
  /* The logits are one NT matmul (parallel over experts for long prompts); the top-k per token
   * is cheap scalar work. Buffers are per-thread scratch, not per-call allocations. */
  float *all = moe_scratch(0, T * E + 2 * E + n_group + (E + n_group + 3) / 4 + 1);
  if (!all) return moe_fail(MOE_ENOMEM, "moe_gate: out of memory");
  float *scores = all + T * E, *biased = scores + E, *group = biased + E;
  unsigned char *taken = (unsigned char *)(group + n_group);
  moe_gemm_nt g = {all, E, x, ldx, NULL, w, D, NULL, w_dtype, 0, D, 0};
  moe_gemm_nt_run(&g, T, E);
  for (int64_t t = 0; t < T; t++) {
    float *s = all + t * E;
    if (score_func == MOE_SIGMOID) {
      for (int64_t e = 0; e < E; e++) scores[e] = 1.0f / (1.0f + expf(-s[e]));
    } else {
      float m = s[0], z = 0;
      for (int64_t e = 1; e < E; e++) m = s[e] > m ? s[e] : m;
      for (int64_t e = 0; e < E; e++) z += (scores[e] = expf(s[e] - m));
      for (int64_t e = 0; e < E; e++) scores[e] /= z;
    }
    gate_token(ids + t * k, weights + t * k, scores, bias, biased, group, taken, E, n_group,
               topk_group, k, norm_topk, route_scale);
  }
  return MOE_OK;
}
