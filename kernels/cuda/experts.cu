/* Grouped SwiGLU experts: three grouped matmuls over all local experts at once (gate and up in
 * one launch, then down), and an ordered combine.
 *
 * Memory (see common.cuh): `offsets` and the six pointer tables are HOST arrays (the tables hold
 * device pointers); x, out, rows, rw and scratch are device memory. The host reads offsets to
 * validate exactly as the CPU does and to shape the launches; the kernels get a device copy.
 * The workspace is [R, I] gate, [R, I] up and [R, D] expert outputs for R = offsets[E] rows;
 * `scratch` is used when the ABI's guaranteed size covers that, else it is allocated on the
 * stream. A token appears at most once per expert (the gate picks distinct experts). */
#include <vector>
#include "gemm.cuh"

#define COMBINE_COLS 32
#define COMBINE_ROWS 8

/* out[rows[r]] += ys[r] * rw[r], expert after expert, as the CPU's loop: a block owns 32 columns
 * and walks the groups in order; a group's rows are distinct tokens, so they update in parallel
 * and the barrier orders the groups. Deterministic, without atomics. */
__global__ __launch_bounds__(COMBINE_COLS * COMBINE_ROWS) void combine_kernel(
    float *out, int64_t ldo, const float *ys, int64_t D, const int32_t *rows, const float *rw,
    const int32_t *offsets, int64_t E) {
  const int64_t d = (int64_t)blockIdx.x * COMBINE_COLS + (threadIdx.x % COMBINE_COLS);
  const int sub = threadIdx.x / COMBINE_COLS;
  for (int64_t e = 0; e < E; e++) {
    const int64_t b = offsets[e], n = offsets[e + 1] - b;
    if (n == 0) continue; /* uniform across the block */
    if (d < D)
      for (int64_t i = sub; i < n; i += COMBINE_ROWS) {
        const int64_t r = b + i;
        out[(int64_t)rows[r] * ldo + d] += ys[r * D + d] * rw[r];
      }
    __syncthreads();
  }
}

static int run(float *out, int64_t ldo, const float *x, int64_t ldx, const int32_t *offsets, const int32_t *rows,
               const float *rw, const void *const *w1, const float *const *s1, const void *const *w3,
               const float *const *s3, const void *const *w2, const float *const *s2, int32_t dtype, int64_t E,
               int64_t D, int64_t I, float *ws, void *stream) {
  const char *fn = "moe_experts";
  const int64_t R = offsets[E];
  float *g = ws, *u = ws + R * I, *ys = ws + 2 * R * I;
  std::vector<GemmProblem> up, down;
  for (int pass = 0; pass < 2; pass++) /* all gate problems, then all up problems: one launch */
    for (int64_t e = 0; e < E; e++) {
      const int64_t o = offsets[e], n = offsets[e + 1] - o;
      if (n == 0) continue;
      const void *w = pass ? w3[e] : w1[e];
      const float *s = pass ? (s3 ? s3[e] : NULL) : (s1 ? s1[e] : NULL);
      up.push_back({x, rows + o, ldx, (const uint8_t *)w, s, 0, (pass ? u : g) + o * I, I, n});
      if (pass) down.push_back({g + o * I, NULL, I, (const uint8_t *)w2[e], s2 ? s2[e] : NULL, 0, ys + o * D, D, n});
    }
  int st = moe_gemm(fn, up.data(), (int64_t)up.size(), I, D, dtype, stream);
  if (!st) st = moe_silu_mul(g, I, g, I, u, I, R, I, stream);
  if (!st) st = moe_gemm(fn, down.data(), (int64_t)down.size(), D, I, dtype, stream);
  if (st) return st;
  void *doff = NULL;
  st = moe_tmp_upload(&doff, offsets, (size_t)(E + 1) * sizeof(int32_t), stream, fn);
  if (st) return st;
  MOE_LAUNCH(dim3((unsigned)cdiv(D, COMBINE_COLS)), COMBINE_COLS * COMBINE_ROWS, 0, stream, combine_kernel)(
      out, ldo, ys, D, rows, rw, (const int32_t *)doff, E);
  st = moe_launched(fn);
  moe_tmp_free(doff, stream);
  return st;
}

int moe_experts(float *out, int64_t ldo, const float *x, int64_t ldx, const int32_t *offsets, const int32_t *rows,
                const float *rw, const void *const *w1, const float *const *s1, const void *const *w3,
                const float *const *s3, const void *const *w2, const float *const *s2, int32_t w_dtype, int64_t E,
                int64_t D, int64_t I, float *scratch, void *stream) {
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
  const int64_t R = offsets[E], need = R * (2 * I + D), have = max_rows * (2 * D + 3 * I);
  float *ws = scratch && need <= have ? scratch : NULL;
  if (!ws) {
    int st = moe_tmp_alloc((void **)&ws, (size_t)need * sizeof(float), stream, __func__);
    if (st) return st;
  }
  int st = run(out, ldo, x, ldx, offsets, rows, rw, w1, s1, w3, s3, w2, s2, w_dtype, E, D, I, ws, stream);
  if (ws != scratch) moe_tmp_free(ws, stream);
  return st;
}
