/* Matmul against a stored weight: out[t, n] = x[t, :] . W[row0 + n, :], and the parallel driver
 * the other kernels share. Threads split the output rows (in groups of the 4-row register tile),
 * so every weight byte is read once per call, whatever T is. */
#include "common.h"

typedef struct { const moe_gemm_nt *g; int64_t T, N; } nt_job;

static void nt_rows(void *p, int64_t i0, int64_t i1) {
  const nt_job *j = p;
  int64_t n1 = i1 * 4 < j->N ? i1 * 4 : j->N;
  moe_ops->gemm_nt(j->g, 0, j->T, i0 * 4, n1);
}

void moe_gemm_nt_run(const moe_gemm_nt *g, int64_t T, int64_t N) {
  if (T <= 0 || N <= 0) return;
  nt_job j = {g, T, N};
  /* Below ~128K multiply-adds a thread hand-off costs more than it saves. Above, claims of
   * at least ~8K (8 rows of a 1024-wide GEMV): a claim costs one atomic, and the last claims
   * bound how long one thread waits for the other at the join. */
  if (N * g->K * T < 131072) { moe_ops->gemm_nt(g, 0, T, 0, N); return; }
  int64_t per_group = 4 * g->K * T;
  moe_parallel_for((N + 3) / 4, (8192 + per_group - 1) / per_group, nt_rows, &j);
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
  moe_gemm_nt g = {out, ldo, x, ldx, NULL, w, K, scale, w_dtype, row0, K, 0};
  const char *region = (const char *)w + row0 * K * moe_dtype_size(w_dtype);
  moe_trace_weights(region, N * K * moe_dtype_size(w_dtype));
  moe_gemm_nt_run(&g, T, N);
  moe_trace_done(region);
  return MOE_OK;
}
