/* The tensor-core tile kernel for F8 and BF16 weights (prefill-sized M). Weights decode exactly
 * into bf16 (an e4m3 code has 4 significant bits; bf16 weights are bf16); the f32 activations are
 * split into three bf16 terms (hi + mid + lo, ~24 significant bits), so three bf16 MMAs with f32
 * accumulation give products as accurate as the f32 CPU path. F8 block scales are applied per
 * 128-wide K block to the partial sums, after the MMAs, where each output column's row (and so
 * its scale) is known. */
#include "gemm.cuh"
#ifdef MOE_HAVE_WMMA
using namespace nvcuda;

#define MMA_BK 32
#define MMA_LDS (MMA_BK + 8) /* bf16 per smem row: 80 bytes keeps 32-byte fragment alignment */
#define MMA_LDC 36           /* floats per row of a warp's 32x32 staging tile */

template <int DT> __global__ __launch_bounds__(128) void mma_kernel(GemmArgs g) {
  __shared__ __align__(32) gpu_bf16 As[3][MMA_BM * MMA_LDS];
  __shared__ __align__(32) gpu_bf16 Bs[MMA_BN * MMA_LDS];
  __shared__ __align__(32) float Cs[4][32 * MMA_LDC];
  int2 tile;
  if (g.tiles) tile = g.tiles[blockIdx.y];
  else tile.x = 0, tile.y = (int)(blockIdx.y * MMA_BM);
  const GemmProblem P = g.probs ? g.probs[tile.x] : g.one;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wm = warp >> 1, wn = warp & 1;
  const int64_t m0 = tile.y, n0 = (int64_t)blockIdx.x * MMA_BN, K = g.K, nkb = cdiv(K, 128);
  /* Each thread stages 16 consecutive K of one A row and of one W row per K step. */
  const int r = tid >> 1, c16 = (tid & 1) * 16;
  const float *arow = m0 + r < P.M ? P.a + (P.a_rows ? (int64_t)P.a_rows[m0 + r] : m0 + r) * P.lda : NULL;
  const uint8_t *wrow = n0 + r < g.N ? P.w + (P.row0 + n0 + r) * K * dtype_size(DT) : NULL;
  float acc[32];
  for (int i = 0; i < 32; i++) acc[i] = 0.f;

  for (int64_t kb = 0; kb < nkb; kb++) {
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> part[2][2];
    for (int i = 0; i < 2; i++)
      for (int j = 0; j < 2; j++) wmma::fill_fragment(part[i][j], 0.f);
    const int64_t kend = min64(K, (kb + 1) * 128);
    for (int64_t k0 = kb * 128; k0 < kend; k0 += MMA_BK) {
      const int64_t ka = k0 + c16;
      float x[16];
      if (g.a_vec && arow && ka + 16 <= K) {
        for (int j = 0; j < 16; j += 4) {
          float4 f = *(const float4 *)(arow + ka + j);
          x[j] = f.x, x[j + 1] = f.y, x[j + 2] = f.z, x[j + 3] = f.w;
        }
      } else {
        for (int j = 0; j < 16; j++) x[j] = arow && ka + j < K ? arow[ka + j] : 0.f;
      }
      for (int j = 0; j < 16; j++) {
        gpu_bf16 hi = gpu_f2bf(x[j]);
        float rest = x[j] - gpu_bf2f(hi);
        gpu_bf16 mid = gpu_f2bf(rest);
        As[0][r * MMA_LDS + c16 + j] = hi;
        As[1][r * MMA_LDS + c16 + j] = mid;
        As[2][r * MMA_LDS + c16 + j] = gpu_f2bf(rest - gpu_bf2f(mid));
      }
      float w[16];
      if (g.w_vec16 && wrow && ka + 16 <= K) {
        const uint4 *src = (const uint4 *)(wrow + ka * dtype_size(DT));
        if (DT == MOE_F8E4M3) {
          uint4 u = src[0];
          uint32_t v[4] = {u.x, u.y, u.z, u.w};
          for (int j = 0; j < 16; j++) w[j] = e4m3_to_f32((v[j >> 2] >> (8 * (j & 3))) & 255u);
        } else {
          uint4 u0 = src[0], u1 = src[1];
          uint32_t v[8] = {u0.x, u0.y, u0.z, u0.w, u1.x, u1.y, u1.z, u1.w};
          for (int j = 0; j < 16; j++) w[j] = bf16_to_f32((v[j >> 1] >> (16 * (j & 1))) & 0xffffu);
        }
      } else {
        for (int j = 0; j < 16; j++) w[j] = wrow && ka + j < K ? load_w(wrow, DT, ka + j) : 0.f;
      }
      for (int j = 0; j < 16; j++) Bs[r * MMA_LDS + c16 + j] = gpu_f2bf(w[j]);
      __syncthreads();
      for (int kk = 0; kk < MMA_BK; kk += 16) {
        wmma::fragment<wmma::matrix_b, 16, 16, 16, gpu_bf16, wmma::col_major> b[2];
        for (int j = 0; j < 2; j++) wmma::load_matrix_sync(b[j], Bs + (wn * 32 + j * 16) * MMA_LDS + kk, MMA_LDS);
        for (int t = 0; t < 3; t++)
          for (int i = 0; i < 2; i++) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, gpu_bf16, wmma::row_major> a;
            wmma::load_matrix_sync(a, As[t] + (wm * 32 + i * 16) * MMA_LDS + kk, MMA_LDS);
            for (int j = 0; j < 2; j++) wmma::mma_sync(part[i][j], a, b[j], part[i][j]);
          }
      }
      __syncthreads();
    }
    /* Lane l owns column l of the warp's 32x32 tile: its scale is one load per K block. */
    float *cw = Cs[warp];
    for (int i = 0; i < 2; i++)
      for (int j = 0; j < 2; j++)
        wmma::store_matrix_sync(cw + i * 16 * MMA_LDC + j * 16, part[i][j], MMA_LDC, wmma::mem_row_major);
    gpu_syncwarp();
    const int64_t n = n0 + wn * 32 + lane;
    float s = 1.f;
    if (DT == MOE_F8E4M3 && n < g.N) s = load_f32u(P.s, ((P.row0 + n) >> 7) * nkb + kb);
    for (int i = 0; i < 32; i++) acc[i] += s * cw[i * MMA_LDC + lane];
    gpu_syncwarp();
  }
  const int64_t n = n0 + wn * 32 + lane;
  if (n < g.N)
    for (int i = 0; i < 32; i++) {
      int64_t m = m0 + wm * 32 + i;
      if (m < P.M) P.c[m * P.ldc + n] = acc[i];
    }
}

void moe_mma_launch(const GemmArgs &g, int32_t dtype, dim3 grid, void *stream) {
  if (dtype == MOE_F8E4M3) MOE_LAUNCH(grid, 128, 0, stream, mma_kernel<MOE_F8E4M3>)(g);
  else MOE_LAUNCH(grid, 128, 0, stream, mma_kernel<MOE_BF16>)(g);
}
#endif
