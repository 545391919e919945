/* moe_linear and the matmul dispatcher. The GEMV path streams each weight row once per tile of
 * up to 8 activation rows: a warp owns one weight row, each lane decodes 4 consecutive weights
 * per step, so a warp step covers exactly one 128-wide F8 scale block and the scale is one load. */
#include <vector>
#include "gemm.cuh"

#define GEMV_WARPS 8 /* weight rows per block, one per warp */
#define GEMV_M 8     /* activation rows per tile: one accumulator each */

template <int DT>
static __device__ __forceinline__ void load4w(const uint8_t *wr, int64_t k, int64_t K, bool vec, float w[4]) {
  if (vec && k + 4 <= K) {
    if (DT == MOE_F8E4M3) {
      uint32_t u = *(const uint32_t *)(wr + k);
      for (int j = 0; j < 4; j++) w[j] = e4m3_to_f32((u >> (8 * j)) & 255u);
    } else if (DT == MOE_BF16) {
      uint2 u = *(const uint2 *)(wr + 2 * k);
      w[0] = bf16_to_f32(u.x & 0xffffu), w[1] = bf16_to_f32(u.x >> 16);
      w[2] = bf16_to_f32(u.y & 0xffffu), w[3] = bf16_to_f32(u.y >> 16);
    } else {
      float4 f = *(const float4 *)(wr + 4 * k);
      w[0] = f.x, w[1] = f.y, w[2] = f.z, w[3] = f.w;
    }
  } else {
    for (int j = 0; j < 4; j++) w[j] = k + j < K ? load_w(wr, DT, k + j) : 0.f;
  }
}

static __device__ __forceinline__ void load4a(const float *ar, int64_t k, int64_t K, bool vec, float x[4]) {
  if (vec && k + 4 <= K) {
    float4 f = *(const float4 *)(ar + k);
    x[0] = f.x, x[1] = f.y, x[2] = f.z, x[3] = f.w;
  } else {
    for (int j = 0; j < 4; j++) x[j] = k + j < K ? ar[k + j] : 0.f;
  }
}

template <int DT> __global__ __launch_bounds__(256) void gemv_kernel(GemmArgs g) {
  int2 tile;
  if (g.tiles) tile = g.tiles[blockIdx.y];
  else tile.x = 0, tile.y = (int)(blockIdx.y * GEMV_M);
  const GemmProblem P = g.probs ? g.probs[tile.x] : g.one;
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int64_t n = (int64_t)blockIdx.x * GEMV_WARPS + warp, m0 = tile.y;
  int mc = (int)min64(GEMV_M, P.M - m0);
  if (n >= g.N || mc <= 0) return; /* whole warps leave; this kernel has no block barrier */
  int64_t row = P.row0 + n, nkb = cdiv(g.K, 128);
  const uint8_t *wr = P.w + row * g.K * dtype_size(DT);
  const float *ar[GEMV_M];
  for (int i = 0; i < GEMV_M; i++)
    ar[i] = P.a + (i < mc ? (P.a_rows ? (int64_t)P.a_rows[m0 + i] : m0 + i) * P.lda : 0);
  float acc[GEMV_M];
  for (int i = 0; i < GEMV_M; i++) acc[i] = 0.f;
#pragma unroll 2
  for (int64_t k0 = 0; k0 < g.K; k0 += 128) {
    int64_t k = k0 + 4 * lane;
    if (k < g.K) {
      float w[4];
      load4w<DT>(wr, k, g.K, g.w_vec, w);
      if (DT == MOE_F8E4M3) { /* dequantise exactly as the CPU does: code * scale, then dot */
        float s = load_f32u(P.s, (row >> 7) * nkb + (k0 >> 7));
        for (int j = 0; j < 4; j++) w[j] *= s;
      }
#pragma unroll
      for (int i = 0; i < GEMV_M; i++)
        if (i < mc) {
          float x[4];
          load4a(ar[i], k, g.K, g.a_vec, x);
          acc[i] += w[0] * x[0] + w[1] * x[1] + w[2] * x[2] + w[3] * x[3];
        }
    }
  }
#pragma unroll
  for (int i = 0; i < GEMV_M; i++) {
    float v = warp_sum(acc[i]);
    if (lane == i && i < mc) P.c[(m0 + i) * P.ldc + n] = v;
  }
}

int moe_gemm(const char *fn, const GemmProblem *probs, int64_t nprob, int64_t N, int64_t K, int32_t dtype,
             void *stream) {
  int64_t maxM = 0;
  for (int64_t p = 0; p < nprob; p++) maxM = max64(maxM, probs[p].M);
  if (maxM == 0 || N == 0) return MOE_OK;
  int64_t wal = dtype == MOE_F8E4M3 ? 4 : dtype == MOE_BF16 ? 8 : 16;
  bool a_vec = K % 4 == 0, w_vec = K % 4 == 0, w16 = (K * dtype_size(dtype)) % 16 == 0 && K % 16 == 0;
  for (int64_t p = 0; p < nprob; p++) {
    a_vec = a_vec && (uintptr_t)probs[p].a % 16 == 0 && probs[p].lda % 4 == 0;
    w_vec = w_vec && (uintptr_t)probs[p].w % wal == 0;
    w16 = w16 && (uintptr_t)probs[p].w % 16 == 0;
  }
#ifdef MOE_HAVE_WMMA
  bool mma = dtype != MOE_F32 && maxM > 16;
  int64_t bm = mma ? MMA_BM : GEMV_M, bn = mma ? MMA_BN : GEMV_WARPS;
#else
  bool mma = false;
  int64_t bm = GEMV_M, bn = GEMV_WARPS;
#endif
  int64_t ntiles = 0;
  for (int64_t p = 0; p < nprob; p++) ntiles += cdiv(probs[p].M, bm);
  if (ntiles > 65535) return moe_fail(MOE_EINVAL, "%s: %lld row tiles exceed one launch", fn, (long long)ntiles);
  GemmArgs g;
  memset(&g, 0, sizeof g);
  g.N = N, g.K = K, g.a_vec = a_vec, g.w_vec = w_vec, g.w_vec16 = w16;
  void *tmp = NULL;
  if (nprob == 1) {
    g.one = probs[0];
  } else {
    size_t pb = (size_t)nprob * sizeof(GemmProblem);
    std::vector<unsigned char> host(pb + (size_t)ntiles * sizeof(int2));
    memcpy(host.data(), probs, pb);
    int2 *t = (int2 *)(host.data() + pb);
    for (int64_t p = 0; p < nprob; p++)
      for (int64_t m0 = 0; m0 < probs[p].M; m0 += bm, t++) t->x = (int)p, t->y = (int)m0;
    int st = moe_tmp_upload(&tmp, host.data(), host.size(), stream, fn);
    if (st) return st;
    g.probs = (const GemmProblem *)tmp;
    g.tiles = (const int2 *)((unsigned char *)tmp + pb);
  }
  dim3 grid((unsigned)cdiv(N, bn), (unsigned)ntiles);
#ifdef MOE_HAVE_WMMA
  if (mma) moe_mma_launch(g, dtype, grid, stream);
  else
#endif
  if (dtype == MOE_F8E4M3) MOE_LAUNCH(grid, 256, 0, stream, gemv_kernel<MOE_F8E4M3>)(g);
  else if (dtype == MOE_BF16) MOE_LAUNCH(grid, 256, 0, stream, gemv_kernel<MOE_BF16>)(g);
  else MOE_LAUNCH(grid, 256, 0, stream, gemv_kernel<MOE_F32>)(g);
  (void)mma;
  int st = moe_launched(fn);
  moe_tmp_free(tmp, stream);
  return st;
}

int moe_linear(float *out, int64_t ldo, const float *x, int64_t ldx, const void *w, const float *scale,
               int32_t w_dtype, int64_t row0, int64_t T, int64_t N, int64_t K, void *stream) {
  CHECK_PTR(out); CHECK_PTR(x); CHECK_PTR(w);
  CHECK_NONNEG(T); CHECK_POS(N); CHECK_POS(K); CHECK_NONNEG(row0);
  CHECK(ldx >= K && ldo >= N, "moe_linear: row strides (ldx %lld, ldo %lld) below K %lld / N %lld",
        (long long)ldx, (long long)ldo, (long long)K, (long long)N);
  int st = moe_check_dtype(w_dtype, scale, __func__);
  if (st) return st;
  GemmProblem p = {x, NULL, ldx, (const uint8_t *)w, scale, row0, out, ldo, T};
  return moe_gemm(__func__, &p, 1, N, K, w_dtype, stream);
}
