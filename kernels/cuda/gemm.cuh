/* The matmul engine behind moe_linear, the experts and the MLA output absorption:
 * C[m, n] = sum_k A[arow(m), k] * W[row0 + n, k] for a list of problems that share N, K and the
 * weight dtype (one problem for moe_linear, one per expert or per head for the grouped calls).
 * Small M (decode) runs a weight-streaming GEMV; larger M runs a bf16 tensor-core tile kernel
 * where the device has one (see mma.cu). */
#ifndef MOE_GPU_GEMM_CUH
#define MOE_GPU_GEMM_CUH
#include "common.cuh"

struct GemmProblem {
  const float *a;         /* A rows: a + arow(m) * lda */
  const int32_t *a_rows;  /* device row indices, or NULL: arow(m) = m */
  int64_t lda;
  const uint8_t *w;       /* the whole stored weight [rows, K] */
  const float *s;         /* F8 scale_inv [ceil(rows/128), ceil(K/128)], indexed by absolute row */
  int64_t row0;
  float *c;
  int64_t ldc;
  int64_t M;
};

/* What a launch sees: the problems (a device copy when there are several) and (problem, m0)
 * tiles, or NULL for the single-problem case where tile y starts at row y * BM. */
struct GemmArgs {
  const GemmProblem *probs;
  GemmProblem one;
  const int2 *tiles;
  int64_t N, K;
  int32_t a_vec; /* A rows 16-byte aligned and K % 4 == 0: float4 loads */
  int32_t w_vec; /* W rows aligned for the GEMV's vector loads */
  int32_t w_vec16; /* W rows 16-byte aligned and 16-element multiples: the tile kernel's loads */
};

/* Queues the problems on the stream (problems is a host array). */
int moe_gemm(const char *fn, const GemmProblem *probs, int64_t nprob, int64_t N, int64_t K, int32_t dtype,
             void *stream);

#ifdef MOE_HAVE_WMMA
#define MMA_BM 64
#define MMA_BN 64
/* Launches the tensor-core kernel (mma.cu); F8 and BF16 weights only. */
void moe_mma_launch(const GemmArgs &g, int32_t dtype, dim3 grid, void *stream);
#endif
#endif
