/* MLA around the attention itself: the paged latent cache (write, gather; f32, bf16 or fp8 as
 * moe_kvcache.h lays it out) and the absorption of kv_b into the query and the output. slots,
 * block tables and kv_scale are device arrays. */
#include <vector>
#include "gemm.cuh"

/* The cache's formats are moe_kvcache.h's, shared with the CPU library: the same latent is
 * stored as the same bytes on every backend. One block per row; an fp8 row's tile amax is a
 * block reduction, so every thread quantizes with the same scale. */
static __device__ float kv_load(const void *kv, const float *scale, int32_t dt, int64_t slot, int64_t C, int64_t i) {
  if (dt == MOE_F32) return ((const float *)kv)[slot * C + i];
  if (dt == MOE_BF16) return bf16_to_f32(((const uint16_t *)kv)[slot * C + i]);
  return e4m3_to_f32(((const uint8_t *)kv)[slot * C + i]) * scale[slot * moe_kv_tiles(C) + i / MOE_KV_TILE];
}
static __device__ float pe_load(const void *pe, int32_t dt, int64_t slot, int64_t dr, int64_t i) {
  return dt == MOE_F32 ? ((const float *)pe)[slot * dr + i] : bf16_to_f32(((const uint16_t *)pe)[slot * dr + i]);
}

__global__ __launch_bounds__(128) void kv_write_kernel(void *kv_cache, void *pe_cache, float *kv_scale, int32_t dt,
                                                      const float *latent, int64_t ld_latent, const float *pe,
                                                      int64_t ld_pe, const int32_t *slots, int64_t C, int64_t dr,
                                                      int64_t n_slots, int *err) {
  __shared__ float red[32];
  const int64_t t = blockIdx.x, slot = slots[t];
  if (!moe_slot_ok(slot, n_slots)) { /* the CPU refuses the call; here the row is skipped and moe_sync reports it */
    if (threadIdx.x == 0) dev_raise(err, MOE_EINVAL, DEV_ERR_KV_SLOT, (int)slot, (int)n_slots);
    return;
  }
  const float *x = latent + t * ld_latent, *r = pe + t * ld_pe;
  for (int64_t i = threadIdx.x; i < dr; i += blockDim.x) {
    if (dt == MOE_F32) ((float *)pe_cache)[slot * dr + i] = r[i];
    else ((uint16_t *)pe_cache)[slot * dr + i] = moe_kv_bf16(r[i]);
  }
  if (dt != MOE_F8E4M3) {
    for (int64_t i = threadIdx.x; i < C; i += blockDim.x) {
      if (dt == MOE_F32) ((float *)kv_cache)[slot * C + i] = x[i];
      else ((uint16_t *)kv_cache)[slot * C + i] = moe_kv_bf16(x[i]);
    }
    return;
  }
  for (int64_t c0 = 0; c0 < C; c0 += MOE_KV_TILE) { /* the tile is one element per thread (128) */
    const int64_t i = c0 + threadIdx.x;
    const float v = i < C ? x[i] : 0.f;
    const float s = moe_kv_fp8_scale(block_max(fabsf(v), red)), inv = 1.0f / s; /* powers of two: exact */
    if (i < C) ((uint8_t *)kv_cache)[slot * C + i] = moe_kv_e4m3(v * inv);
    if (threadIdx.x == 0) kv_scale[slot * moe_kv_tiles(C) + c0 / MOE_KV_TILE] = s;
  }
}

int moe_kv_write(void *kv_cache, void *pe_cache, float *kv_scale, int32_t kv_dtype, const float *latent,
                 int64_t ld_latent, const float *pe, int64_t ld_pe, const int32_t *slots, int64_t T, int64_t C,
                 int64_t dr, int64_t n_slots, void *stream) {
  CHECK_PTR(kv_cache); CHECK_PTR(pe_cache); CHECK_PTR(latent); CHECK_PTR(pe); CHECK_PTR(slots);
  CHECK_NONNEG(T); CHECK_NONNEG(n_slots); CHECK_NONNEG(C); CHECK_NONNEG(dr);
  int st = moe_check_kv(kv_dtype, kv_scale, __func__);
  if (st) return st;
  if (T == 0) return MOE_OK;
  MOE_LAUNCH(dim3((unsigned)T), MOE_KV_TILE, 0, stream, kv_write_kernel)(kv_cache, pe_cache, kv_scale, kv_dtype, latent, ld_latent,
                                                                        pe, ld_pe, slots, C, dr, n_slots, moe_dev_err());
  return moe_launched(__func__);
}

__global__ void kv_gather_kernel(float *latent, float *pe, const void *kv_cache, const void *pe_cache,
                                 const float *kv_scale, int32_t dt, const int32_t *block_table, int64_t C, int64_t dr,
                                 int64_t page_size, int64_t n_slots, int *err) {
  const int64_t p = blockIdx.x, page = block_table[p / page_size];
  if (!moe_page_ok(page, page_size, n_slots)) { /* reported by moe_sync, as moe_kv_write's slots */
    if (threadIdx.x == 0) dev_raise(err, MOE_EINVAL, DEV_ERR_KV_PAGE_GATHER, (int)page, (int)(n_slots / page_size));
    return;
  }
  const int64_t slot = page * page_size + p % page_size;
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x) latent[p * C + i] = kv_load(kv_cache, kv_scale, dt, slot, C, i);
  for (int64_t i = threadIdx.x; i < dr; i += blockDim.x) pe[p * dr + i] = pe_load(pe_cache, dt, slot, dr, i);
}

int moe_kv_gather(float *latent, float *pe, const void *kv_cache, const void *pe_cache, const float *kv_scale,
                  int32_t kv_dtype, const int32_t *block_table, int64_t L, int64_t C, int64_t dr, int64_t page_size,
                  int64_t n_slots, void *stream) {
  CHECK_PTR(latent); CHECK_PTR(pe); CHECK_PTR(kv_cache); CHECK_PTR(pe_cache); CHECK_PTR(block_table);
  CHECK_POS(page_size); CHECK_NONNEG(L); CHECK_NONNEG(n_slots); CHECK_NONNEG(C); CHECK_NONNEG(dr);
  int st = moe_check_kv(kv_dtype, kv_scale, __func__);
  if (st) return st;
  if (L == 0) return MOE_OK;
  MOE_LAUNCH(dim3((unsigned)L), 128, 0, stream, kv_gather_kernel)(latent, pe, kv_cache, pe_cache, kv_scale, kv_dtype, block_table,
                                                                  C, dr, page_size, n_slots, moe_dev_err());
  return moe_launched(__func__);
}

#define ABSORB_T 8 /* query rows per pass over a head's weights */

/* q_lat[t, h, c] = sum_{d < dn} q[t, h, d] * Wkvb[h*(dn+dv) + d, c]: a contraction over W's rows,
 * so one thread per column c walks the head's dn rows (coalesced across the block), summing in
 * d order as the CPU does. */
__global__ __launch_bounds__(256) void absorb_q_kernel(float *q_lat, const float *q, const uint8_t *w,
                                                     const float *scale, int32_t dtype, int64_t T, int64_t H,
                                                     int64_t dn, int64_t dr, int64_t dv, int64_t C) {
  const int64_t h = blockIdx.y, c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const int64_t nkb = cdiv(C, 128), esz = dtype_size(dtype);
  for (int64_t t0 = 0; t0 < T; t0 += ABSORB_T) {
    const int tc = (int)min64(ABSORB_T, T - t0);
    float acc[ABSORB_T];
    for (int i = 0; i < ABSORB_T; i++) acc[i] = 0.f;
    for (int64_t d = 0; d < dn; d++) {
      const int64_t row = h * (dn + dv) + d;
      float wv = load_w(w + row * C * esz, dtype, c);
      if (dtype == MOE_F8E4M3) wv *= load_f32u(scale, (row >> 7) * nkb + (c >> 7));
#pragma unroll
      for (int i = 0; i < ABSORB_T; i++)
        if (i < tc) acc[i] += q[((t0 + i) * H + h) * (dn + dr) + d] * wv;
    }
    for (int i = 0; i < tc; i++) q_lat[((t0 + i) * H + h) * C + c] = acc[i];
  }
}

int moe_mla_absorb_q(float *q_lat, const float *q, const void *wkv_b, const float *scale, int32_t w_dtype, int64_t T,
                     int64_t H, int64_t dn, int64_t dr, int64_t dv, int64_t C, void *stream) {
  CHECK_PTR(q_lat); CHECK_PTR(q); CHECK_PTR(wkv_b); CHECK_POS(H); CHECK_POS(dn); CHECK_POS(C);
  int st = moe_check_dtype(w_dtype, scale, __func__);
  if (st) return st;
  if (T <= 0) return MOE_OK;
  CHECK(H <= 65535, "moe_mla_absorb_q: %lld heads exceed one launch", (long long)H);
  MOE_LAUNCH(dim3((unsigned)cdiv(C, 256), (unsigned)H), 256, 0, stream, absorb_q_kernel)(q_lat, q, (const uint8_t *)wkv_b, scale, w_dtype, T, H, dn, dr, dv, C);
  return moe_launched(__func__);
}

/* out[t, h*dv + v] = o_lat[t, h, :] . Wkvb[h*(dn+dv) + dn + v, :]: one matmul problem per head,
 * all heads in one grouped launch. */
int moe_mla_absorb_out(float *out, const float *o_lat, const void *wkv_b, const float *scale, int32_t w_dtype,
                       int64_t T, int64_t H, int64_t dn, int64_t dv, int64_t C, void *stream) {
  CHECK_PTR(out); CHECK_PTR(o_lat); CHECK_PTR(wkv_b); CHECK_POS(H); CHECK_POS(dv); CHECK_POS(C);
  int st = moe_check_dtype(w_dtype, scale, __func__);
  if (st) return st;
  if (T <= 0) return MOE_OK;
  std::vector<GemmProblem> p((size_t)H);
  for (int64_t h = 0; h < H; h++)
    p[h] = {o_lat + h * C, NULL, H * C, (const uint8_t *)wkv_b, scale, h * (dn + dv) + dn, out + h * dv, H * dv, T};
  return moe_gemm(__func__, p.data(), H, dv, C, w_dtype, stream);
}
