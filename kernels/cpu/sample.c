/* Sampling helpers: argmax, log-softmax and one draw under temperature / top-k / top-p / min-p. */
#include <math.h>
#include <stdlib.h>
#include "common.h"
#if defined(__SSE2__)
#include <immintrin.h>
#endif

/* First index of the largest value (NaNs never win; a NaN in front gives 0, as a scalar scan
 * that keeps index 0 unless a later value compares greater). Two vector passes: the maximum,
 * then the first position equal to it; ~10x a scalar scan over a vocabulary row. */
static int64_t argmax_row(const float *l, int64_t V) {
  if (l[0] != l[0]) return 0;
  int64_t v = 0;
  float m = l[0];
#if defined(__SSE2__)
  __m128 a0 = _mm_set1_ps(m), a1 = a0, a2 = a0, a3 = a0;
  for (; v + 16 <= V; v += 16) { /* maxps(x, acc) keeps acc when x is NaN */
    a0 = _mm_max_ps(_mm_loadu_ps(l + v), a0);
    a1 = _mm_max_ps(_mm_loadu_ps(l + v + 4), a1);
    a2 = _mm_max_ps(_mm_loadu_ps(l + v + 8), a2);
    a3 = _mm_max_ps(_mm_loadu_ps(l + v + 12), a3);
  }
  float lanes[4];
  _mm_storeu_ps(lanes, _mm_max_ps(_mm_max_ps(a0, a1), _mm_max_ps(a2, a3)));
  for (int i = 0; i < 4; i++) m = lanes[i] > m ? lanes[i] : m;
#endif
  for (; v < V; v++) m = l[v] > m ? l[v] : m;
  v = 0;
#if defined(__SSE2__)
  const __m128 mv = _mm_set1_ps(m);
  for (; v + 4 <= V; v += 4) {
    int hit = _mm_movemask_ps(_mm_cmpeq_ps(_mm_loadu_ps(l + v), mv));
    if (hit) return v + __builtin_ctz((unsigned)hit);
  }
#endif
  for (; v < V; v++) if (l[v] == m) return v;
  return 0;
}

int moe_argmax(int32_t *ids, const float *logits, int64_t T, int64_t V, void *stream) {
  (void)stream;
  CHECK_PTR(ids); CHECK_PTR(logits); CHECK_NONNEG(T); CHECK_POS(V);
  for (int64_t t = 0; t < T; t++) ids[t] = (int32_t)argmax_row(logits + t * V, V);
  return MOE_OK;
}

int moe_log_softmax(float *out, const float *logits, int64_t T, int64_t V, void *stream) {
  (void)stream;
  CHECK_PTR(out); CHECK_PTR(logits); CHECK_NONNEG(T); CHECK_POS(V);
  for (int64_t t = 0; t < T; t++) {
    const float *l = logits + t * V;
    float m = l[0];
    for (int64_t v = 1; v < V; v++) m = l[v] > m ? l[v] : m;
    double z = 0;
    for (int64_t v = 0; v < V; v++) z += exp((double)(l[v] - m));
    float lz = m + (float)log(z);
    for (int64_t v = 0; v < V; v++) out[t * V + v] = l[v] - lz;
  }
  return MOE_OK;
}

typedef struct { float p; int32_t id; } cand;

/* Descending probability, then ascending id: a total order, so draws are reproducible. */
static int by_prob(const void *a, const void *b) {
  const cand *x = a, *y = b;
  if (x->p != y->p) return x->p > y->p ? -1 : 1;
  return x->id - y->id;
}

int moe_sample(int32_t *id, const float *logits, int64_t V, float temperature, int32_t top_k,
               float top_p, float min_p, float u, float *scratch, void *stream) {
  (void)stream; (void)scratch;
  CHECK_PTR(id); CHECK_PTR(logits); CHECK_POS(V);
  CHECK(temperature > 0, "moe_sample: temperature must be > 0 (use argmax for greedy)");
  CHECK(u >= 0 && u < 1, "moe_sample: the uniform draw must lie in [0, 1)");
  cand *c = malloc((size_t)V * sizeof(cand));
  if (!c) return moe_fail(MOE_ENOMEM, "moe_sample: out of memory");
  float m = -INFINITY;
  for (int64_t v = 0; v < V; v++) m = logits[v] / temperature > m ? logits[v] / temperature : m;
  double z = 0;
  for (int64_t v = 0; v < V; v++) {
    c[v].id = (int32_t)v;
    c[v].p = expf(logits[v] / temperature - m);
    z += c[v].p;
  }
  for (int64_t v = 0; v < V; v++) c[v].p = (float)(c[v].p / z);
  qsort(c, (size_t)V, sizeof(cand), by_prob);
  int64_t n = V;
  if (top_k > 0 && top_k < n) n = top_k;
  if (top_p < 1) {
    double cum = 0;
    int64_t i = 0;
    for (; i < n; i++) { cum += c[i].p; if (cum >= top_p) { i++; break; } }
    n = i < n ? i : n;
  }
  if (min_p > 0) {
    float floor_p = c[0].p * min_p;
    int64_t i = 1;
    while (i < n && c[i].p >= floor_p) i++;
    n = i;
  }
  double total = 0;
  for (int64_t i = 0; i < n; i++) total += c[i].p;
  double target = (double)u * total, cum = 0;
  int32_t pick = c[n - 1].id;
  for (int64_t i = 0; i < n; i++) {
    cum += c[i].p;
    if (target < cum) { pick = c[i].id; break; }
  }
  *id = pick;
  free(c);
  return MOE_OK;
}
