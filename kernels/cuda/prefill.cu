/* Expanded ("naive") MLA attention for prefill: keys/values from kv [L, H, dn+dv] (k_nope then v,
 * = kv_b(latent)) and the shared k_pe [L, dr]. A block takes 16 consecutive queries of one head
 * and walks the keys in tiles staged in shared memory, so each key is read once per 16 queries
 * (flash-attention style, online softmax) instead of once per query. Warp w owns queries
 * 4w..4w+3; within a key tile, lane j scores key j % 16 (the two half-warps split the dot
 * product), and lane l accumulates value columns l, l+32, ... */
#include "common.cuh"

#define PF_THREADS 128
#define PF_Q 16       /* queries per block: 4 warps x 4 */
#define PF_QW 4       /* queries per warp */
#define PF_KT 16      /* keys per tile */
#define PF_VPL 8      /* value columns per lane: dv <= 256 */

/* Key rows padded to 2 mod 32 floats: lane (j, half) reads bank 2j + half, all distinct. */
static __host__ __device__ int64_t key_stride(int64_t dk) { return dk + (34 - dk % 32) % 32; }

__global__ __launch_bounds__(PF_THREADS) void prefill_attend_kernel(float *out, const float *q, const float *kv,
                                                                  const float *k_pe, int64_t T, int64_t q_pos0,
                                                                  int64_t H, int64_t dn, int64_t dr, int64_t dv,
                                                                  float scale) {
  MOE_DYN_SMEM(smem);
  const int64_t dk = dn + dr, ldk = key_stride(dk);
  float *qs = (float *)smem;            /* [PF_Q][dk] */
  float *ks = qs + PF_Q * dk;           /* [PF_KT][ldk] */
  float *vs = ks + PF_KT * ldk;         /* [PF_KT][dv] */
  float *ps = vs + PF_KT * dv;          /* [4 warps][PF_KT] probabilities of the current tile */
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, j = lane % PF_KT, half = lane / PF_KT;
  const int64_t t0 = (int64_t)blockIdx.x * PF_Q, h = blockIdx.y, nq = min64(PF_Q, T - t0), ldkv = H * (dn + dv);
  for (int64_t i = tid; i < PF_Q * dk; i += blockDim.x) {
    const int64_t r = i / dk, d = i % dk;
    qs[i] = r < nq ? q[((t0 + r) * H + h) * dk + d] : 0.f;
  }
  float acc[PF_QW][PF_VPL], m[PF_QW], l[PF_QW];
  for (int a = 0; a < PF_QW; a++) {
    m[a] = -INFINITY, l[a] = 0.f;
    for (int c = 0; c < PF_VPL; c++) acc[a][c] = 0.f;
  }
  const int64_t last = q_pos0 + t0 + nq - 1; /* the block's furthest key */
  for (int64_t i0 = 0; i0 <= last; i0 += PF_KT) {
    __syncthreads(); /* the previous tile (and the queries, the first time) are settled */
    for (int64_t i = tid; i < PF_KT * dk; i += blockDim.x) {
      const int64_t r = i / dk, d = i % dk, key = i0 + r;
      ks[r * ldk + d] = key > last ? 0.f : d < dn ? kv[key * ldkv + h * (dn + dv) + d] : k_pe[key * dr + d - dn];
    }
    for (int64_t i = tid; i < PF_KT * dv; i += blockDim.x) {
      const int64_t r = i / dv, c = i % dv, key = i0 + r;
      vs[i] = key > last ? 0.f : kv[key * ldkv + h * (dn + dv) + dn + c];
    }
    __syncthreads();
#pragma unroll
    for (int a = 0; a < PF_QW; a++) { /* unrolled, so acc stays in registers */
      const int r = warp * PF_QW + a;
      const int64_t pos = q_pos0 + t0 + r; /* this query attends keys 0..pos */
      float s = 0.f;
      for (int64_t d = half; d < dk; d += 2) s += qs[r * dk + d] * ks[j * ldk + d];
      s += gpu_shfl_xor(s, PF_KT);
      s = i0 + j <= pos && r < nq ? s * scale : -INFINITY;
      const float mt = fmaxf(m[a], warp_max(s));
      const float alpha = mt == -INFINITY ? 1.f : expf(m[a] - mt);
      const float p = s == -INFINITY ? 0.f : expf(s - mt);
      l[a] = l[a] * alpha + warp_sum(half ? 0.f : p);
      m[a] = mt;
      if (half == 0) ps[warp * PF_KT + j] = p;
      gpu_syncwarp();
#pragma unroll
      for (int c = 0; c < PF_VPL; c++) {
        const int64_t v = lane + 32 * c;
        if (v < dv) {
          float x = acc[a][c] * alpha;
#pragma unroll 4
          for (int k = 0; k < PF_KT; k++) x += ps[warp * PF_KT + k] * vs[k * dv + v];
          acc[a][c] = x;
        }
      }
      gpu_syncwarp(); /* ps is rewritten for the next query */
    }
  }
#pragma unroll
  for (int a = 0; a < PF_QW; a++) {
    const int r = warp * PF_QW + a;
    if (r >= nq) continue;
    float *o = out + ((t0 + r) * H + h) * dv;
#pragma unroll
    for (int c = 0; c < PF_VPL; c++)
      if (lane + 32 * c < dv) o[lane + 32 * c] = acc[a][c] / l[a];
  }
}

int moe_mla_attend_naive(float *out, const float *q, const float *kv, const float *k_pe, int64_t T, int64_t L,
                         int64_t q_pos0, int64_t H, int64_t dn, int64_t dr, int64_t dv, float softmax_scale,
                         void *stream) {
  CHECK_PTR(out); CHECK_PTR(q); CHECK_PTR(kv); CHECK_PTR(k_pe); CHECK_POS(H);
  CHECK(q_pos0 + T <= L, "moe_mla_attend_naive: queries reach position %lld beyond %lld keys", (long long)(q_pos0 + T), (long long)L);
  if (T <= 0) return MOE_OK;
  const int64_t dk = dn + dr;
  const size_t smem = (size_t)(PF_Q * dk + PF_KT * key_stride(dk) + PF_KT * dv + 4 * PF_KT) * sizeof(float);
  CHECK(dv <= 32 * PF_VPL && smem <= 48 * 1024 && H <= 65535,
        "moe_mla_attend_naive: head dims (%lld + %lld, %lld) or H %lld exceed the device kernel", (long long)dn,
        (long long)dr, (long long)dv, (long long)H);
  MOE_LAUNCH(dim3((unsigned)cdiv(T, PF_Q), (unsigned)H), PF_THREADS, smem, stream, prefill_attend_kernel)(
      out, q, kv, k_pe, T, q_pos0, H, dn, dr, dv, softmax_scale);
  return moe_launched(__func__);
}
