/* MLA attention over the paged latent cache (the absorbed form, for decode and mixed batches):
 * one block per (query, head) with an online softmax over tiles of keys; keys and values are the
 * cached latent. cu_q and ctx_len are HOST arrays (common.cuh); block tables are device memory.
 * The expanded (naive) form for prefill is in prefill.cu. */
#include <vector>
#include "common.cuh"

#define ATT_THREADS 128
#define ATT_TILE 32 /* keys scored per step, one warp per key */

/* Keys of the paged latent cache: key = value = the cached latent of a slot, read in the
 * cache's dtype (moe_kvcache.h) and converted per element, never copied to f32. */
struct PagedKeys {
  const void *kv, *pe;
  const float *scale;
  const int32_t *bt;
  int64_t page, C, dr;
  int32_t dt;
  __device__ int64_t row(int64_t i) const { return (int64_t)bt[i / page] * page + i % page; }
  __device__ float key(int64_t r, int64_t c) const {
    if (dt == MOE_F32) return ((const float *)kv)[r * C + c];
    if (dt == MOE_BF16) return bf16_to_f32(((const uint16_t *)kv)[r * C + c]);
    return e4m3_to_f32(((const uint8_t *)kv)[r * C + c]) * scale[r * moe_kv_tiles(C) + c / MOE_KV_TILE];
  }
  __device__ float rope(int64_t r, int64_t c) const {
    return dt == MOE_F32 ? ((const float *)pe)[r * dr + c] : bf16_to_f32(((const uint16_t *)pe)[r * dr + c]);
  }
  __device__ float val(int64_t r, int64_t c) const { return key(r, c); }
};

/* out[0..dv) = softmax_i((qk . key_i + qr . rope_i) * scale) . val_i over i = 0..last.
 * qk [dk] and qr [dr] are in shared memory; acc [dv] is shared scratch. Every thread keeps the
 * same running max and denominator (same values, same order). */
template <class Keys>
static __device__ void attend_one(const Keys &K, int64_t last, const float *qk, int64_t dk, const float *qr,
                                  int64_t dr, float *acc, int64_t dv, float scale, float *out) {
  __shared__ float p[ATT_TILE];
  __shared__ int64_t rows[ATT_TILE];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nw = blockDim.x >> 5;
  for (int64_t c = tid; c < dv; c += blockDim.x) acc[c] = 0.f;
  float m = -INFINITY, l = 0.f;
  for (int64_t i0 = 0; i0 <= last; i0 += ATT_TILE) {
    const int n = (int)min64(ATT_TILE, last + 1 - i0);
    for (int j = warp; j < n; j += nw) {
      const int64_t r = K.row(i0 + j);
      float a = 0.f;
      for (int64_t c = lane; c < dk; c += 32) a += qk[c] * K.key(r, c);
      for (int64_t c = lane; c < dr; c += 32) a += qr[c] * K.rope(r, c);
      a = warp_sum(a);
      if (lane == 0) p[j] = a * scale, rows[j] = r;
    }
    __syncthreads();
    float mt = m;
    for (int j = 0; j < n; j++) mt = fmaxf(mt, p[j]);
    const float alpha = expf(m - mt); /* 0 on the first tile (m = -inf) */
    __syncthreads(); /* every thread has read the scores before they become weights */
    if (tid < n) p[tid] = expf(p[tid] - mt);
    __syncthreads();
    float sum = 0.f;
    for (int j = 0; j < n; j++) sum += p[j];
    l = l * alpha + sum;
    m = mt;
    for (int64_t c = tid; c < dv; c += blockDim.x) {
      float v = acc[c] * alpha;
      for (int j = 0; j < n; j++) v += p[j] * K.val(rows[j], c);
      acc[c] = v;
    }
    __syncthreads(); /* before the next tile overwrites p and rows */
  }
  for (int64_t c = tid; c < dv; c += blockDim.x) out[c] = acc[c] / l;
}

/* Query rows: (row t, sequence s, position) triples uploaded with the launch. */
__global__ __launch_bounds__(ATT_THREADS) void attend_kernel(float *o_lat, const float *q_lat, const float *q,
                                                           const void *kv_cache, const void *pe_cache,
                                                           const float *kv_scale, int32_t kv_dtype,
                                                           const int32_t *block_tables, int64_t max_blocks,
                                                           const int32_t *rows, int64_t H, int64_t C, int64_t dn,
                                                           int64_t dr, int64_t page_size, int64_t n_slots,
                                                           float scale, int *err) {
  MOE_DYN_SMEM(smem);
  __shared__ int bad_page;
  float *qs = (float *)smem, *acc = qs + C + dr;
  const int64_t t = rows[3 * blockIdx.x], s = rows[3 * blockIdx.x + 1], pos = rows[3 * blockIdx.x + 2];
  const int64_t h = blockIdx.y;
  const float *ql = q_lat + (t * H + h) * C, *qp = q + (t * H + h) * (dn + dr) + dn;
  if (threadIdx.x == 0) { /* the pages this query reads must lie in the cache (moe_checks.h) */
    bad_page = 0;
    for (int64_t b = 0; b <= pos / page_size && !bad_page; b++) {
      const int64_t page = block_tables[s * max_blocks + b];
      if (!moe_page_ok(page, page_size, n_slots)) {
        bad_page = 1;
        dev_raise(err, MOE_EINVAL, DEV_ERR_KV_PAGE_ATTEND, (int)page, (int)(n_slots / page_size));
      }
    }
  }
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x) qs[i] = ql[i];
  for (int64_t i = threadIdx.x; i < dr; i += blockDim.x) qs[C + i] = qp[i];
  __syncthreads();
  if (bad_page) return; /* every thread sees the flag after the barrier: the block leaves together */
  PagedKeys K = {kv_cache, pe_cache, kv_scale, block_tables + s * max_blocks, page_size, C, dr, kv_dtype};
  attend_one(K, pos, qs, C, qs + C, dr, acc, C, scale, o_lat + (t * H + h) * C);
}

int moe_mla_attend(float *o_lat, const float *q_lat, const float *q, const void *kv_cache, const void *pe_cache,
                   const float *kv_scale, int32_t kv_dtype, const int32_t *block_tables, int64_t max_blocks,
                   const int32_t *cu_q, const int32_t *ctx_len, int64_t S, int64_t H, int64_t C, int64_t dn,
                   int64_t dr, int64_t page_size, int64_t n_slots, float softmax_scale, void *stream) {
  CHECK_PTR(o_lat); CHECK_PTR(q_lat); CHECK_PTR(q); CHECK_PTR(kv_cache); CHECK_PTR(pe_cache);
  CHECK_PTR(block_tables); CHECK_PTR(cu_q); CHECK_PTR(ctx_len); CHECK_POS(page_size); CHECK_NONNEG(n_slots);
  int st0 = moe_check_kv(kv_dtype, kv_scale, __func__);
  if (st0) return st0;
  std::vector<int32_t> rows;
  for (int64_t s = 0; s < S; s++) {
    int64_t n = cu_q[s + 1] - cu_q[s];
    CHECK(n >= 0 && n <= ctx_len[s], "moe_mla_attend: sequence %lld has %lld queries but %d cached positions", (long long)s, (long long)n, ctx_len[s]);
    CHECK(ctx_len[s] <= max_blocks * page_size, "moe_mla_attend: sequence %lld overflows its block table", (long long)s);
    for (int64_t j = 0; j < n; j++)
      rows.insert(rows.end(), {(int32_t)(cu_q[s] + j), (int32_t)s, (int32_t)(ctx_len[s] - n + j)});
  }
  if (rows.empty()) return MOE_OK;
  size_t smem = (size_t)(2 * C + dr) * sizeof(float);
  CHECK(smem <= 48 * 1024 && H <= 65535, "moe_mla_attend: C %lld / H %lld exceed the device kernel", (long long)C, (long long)H);
  void *drows = NULL;
  int st = moe_tmp_upload(&drows, rows.data(), rows.size() * sizeof(int32_t), stream, __func__);
  if (st) return st;
  MOE_LAUNCH(dim3((unsigned)(rows.size() / 3), (unsigned)H), ATT_THREADS, smem, stream, attend_kernel)(
      o_lat, q_lat, q, kv_cache, pe_cache, kv_scale, kv_dtype, block_tables, max_blocks, (const int32_t *)drows, H, C, dn, dr, page_size, n_slots,
      softmax_scale, moe_dev_err());
  st = moe_launched(__func__);
  moe_tmp_free(drows, stream);
  return st;
}
