/* MLA around the attention itself: the paged latent cache (write, gather) and the absorption of
 * kv_b into the query and the output. slots and block tables are device arrays. */
#include <vector>
#include "gemm.cuh"

__global__ void kv_write_kernel(float *kv_cache, float *pe_cache, const float *latent, int64_t ld_latent,
                                const float *pe, int64_t ld_pe, const int32_t *slots, int64_t C, int64_t dr,
                                int64_t n_slots, int *err) {
  const int64_t t = blockIdx.x, slot = slots[t];
  if (!moe_slot_ok(slot, n_slots)) { /* the CPU refuses the call; here the row is skipped and moe_sync reports it */
    if (threadIdx.x == 0) dev_raise(err, MOE_EINVAL, DEV_ERR_KV_SLOT, (int)slot, (int)n_slots);
    return;
  }
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x) kv_cache[slot * C + i] = latent[t * ld_latent + i];
  for (int64_t i = threadIdx.x; i < dr; i += blockDim.x) pe_cache[slot * dr + i] = pe[t * ld_pe + i];
}

int moe_kv_write(float *kv_cache, float *pe_cache, const float *latent, int64_t ld_latent, const float *pe,
                 int64_t ld_pe, const int32_t *slots, int64_t T, int64_t C, int64_t dr, int64_t n_slots, void *stream) {
  CHECK_PTR(kv_cache); CHECK_PTR(pe_cache); CHECK_PTR(latent); CHECK_PTR(pe); CHECK_PTR(slots);
  CHECK_NONNEG(T); CHECK_NONNEG(n_slots);
  if (T == 0) return MOE_OK;
  MOE_LAUNCH(dim3((unsigned)T), 128, 0, stream, kv_write_kernel)(kv_cache, pe_cache, latent, ld_latent, pe, ld_pe, slots, C, dr, n_slots, moe_dev_err());
  return moe_launched(__func__);
}

__global__ void kv_gather_kernel(float *latent, float *pe, const float *kv_cache, const float *pe_cache,
                                 const int32_t *block_table, int64_t C, int64_t dr, int64_t page_size,
                                 int64_t n_slots, int *err) {
  const int64_t p = blockIdx.x, page = block_table[p / page_size];
  if (!moe_page_ok(page, page_size, n_slots)) { /* reported by moe_sync, as moe_kv_write's slots */
    if (threadIdx.x == 0) dev_raise(err, MOE_EINVAL, DEV_ERR_KV_PAGE_GATHER, (int)page, (int)(n_slots / page_size));
    return;
  }
  const int64_t slot = page * page_size + p % page_size;
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x) latent[p * C + i] = kv_cache[slot * C + i];
  for (int64_t i = threadIdx.x; i < dr; i += blockDim.x) pe[p * dr + i] = pe_cache[slot * dr + i];
}

int moe_kv_gather(float *latent, float *pe, const float *kv_cache, const float *pe_cache, const int32_t *block_table,
                  int64_t L, int64_t C, int64_t dr, int64_t page_size, int64_t n_slots, void *stream) {
  CHECK_PTR(latent); CHECK_PTR(pe); CHECK_PTR(kv_cache); CHECK_PTR(pe_cache); CHECK_PTR(block_table);
  CHECK_POS(page_size); CHECK_NONNEG(L); CHECK_NONNEG(n_slots);
  if (L == 0) return MOE_OK;
  MOE_LAUNCH(dim3((unsigned)L), 128, 0, stream, kv_gather_kernel)(latent, pe, kv_cache, pe_cache, block_table, C, dr, page_size, n_slots, moe_dev_err());
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
