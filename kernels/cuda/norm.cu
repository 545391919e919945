/* Row-wise and element-wise kernels: RMSNorm, embedding, rotary embedding, SwiGLU, add. Each
 * follows the CPU reference's arithmetic (double sum of squares, double-precision cos/sin of the
 * f32 angle, expf) so the two agree to rounding. */
#include "common.cuh"

/* Threads of a row kernel; a multiple of 32 (block_sum). */
#define ROW_THREADS 256

/* One block per token: the sum of squares first (in double, as the CPU), then the scaled row, so
 * out may alias x. */
__global__ __launch_bounds__(ROW_THREADS) void rmsnorm_kernel(float *out, int64_t ldo, const float *x, int64_t ldx,
                                                            const uint8_t *w, int32_t dtype, int64_t D, float eps) {
  __shared__ double red[32];
  const float *xr = x + (int64_t)blockIdx.x * ldx;
  float *o = out + (int64_t)blockIdx.x * ldo;
  double ss = 0;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) ss += (double)xr[i] * xr[i];
  ss = block_sum(ss, red);
  float r = 1.0f / sqrtf((float)(ss / (double)D) + eps);
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) o[i] = xr[i] * r * load_w(w, dtype, i);
}

int moe_rmsnorm(float *out, int64_t ldo, const float *x, int64_t ldx, const void *w, int32_t w_dtype, int64_t T,
                int64_t D, float eps, void *stream) {
  CHECK_PTR(out); CHECK_PTR(x); CHECK_PTR(w); CHECK_NONNEG(T); CHECK_POS(D);
  CHECK(w_dtype != MOE_F8E4M3, "moe_rmsnorm: norm weights are BF16 or F32");
  int st = moe_check_dtype(w_dtype, NULL, __func__);
  if (st) return st;
  if (T == 0) return MOE_OK;
  CHECK(T <= 0x7fffffff, "moe_rmsnorm: %lld rows exceed one launch", (long long)T);
  MOE_LAUNCH(dim3((unsigned)T), ROW_THREADS, 0, stream, rmsnorm_kernel)(out, ldo, x, ldx, (const uint8_t *)w, w_dtype, D, eps);
  return moe_launched(__func__);
}

/* One block per token; an id out of range leaves a zero row and is reported by moe_sync. */
__global__ __launch_bounds__(ROW_THREADS) void embed_kernel(float *out, const int32_t *ids, const uint8_t *table,
                                                          int32_t dtype, int64_t D, int64_t vocab, int *err) {
  int32_t id = ids[blockIdx.x];
  float *o = out + (int64_t)blockIdx.x * D;
  bool ok = id >= 0 && id < vocab;
  if (!ok && threadIdx.x == 0) dev_raise(err, MOE_ERANGE, DEV_ERR_EMBED_RANGE, id, (int)vocab);
  const uint8_t *row = table + (ok ? id : 0) * D * dtype_size(dtype);
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) o[i] = ok ? load_w(row, dtype, i) : 0.f;
}

int moe_embed(float *out, const int32_t *ids, const void *table, int32_t dtype, int64_t T, int64_t D,
              int64_t vocab, void *stream) {
  CHECK_PTR(out); CHECK_PTR(ids); CHECK_PTR(table); CHECK_NONNEG(T); CHECK_POS(D);
  CHECK(dtype != MOE_F8E4M3, "moe_embed: embeddings are BF16 or F32");
  int st = moe_check_dtype(dtype, NULL, __func__);
  if (st) return st;
  if (T == 0) return MOE_OK;
  CHECK(T <= 0x7fffffff, "moe_embed: %lld tokens exceed one launch", (long long)T);
  MOE_LAUNCH(dim3((unsigned)T), ROW_THREADS, 0, stream, embed_kernel)(out, ids, (const uint8_t *)table, dtype, D, vocab, moe_dev_err());
  return moe_launched(__func__);
}

/* One thread per (token, pair): the angle's cos/sin once, then every head. */
__global__ void rope_kernel(float *x, int64_t ld_token, int64_t ld_head, int64_t n_heads, int64_t offset,
                            const int32_t *positions, const float *inv_freq, int64_t T, int64_t half) {
  int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= T * half) return;
  int64_t t = idx / half, i = idx % half;
  /* model.py: freqs = outer(t, inv_freq) in float32, then polar(): cos/sin of that float. */
  float angle = (float)positions[t] * inv_freq[i];
  float c = (float)cos((double)angle), s = (float)sin((double)angle);
  for (int64_t h = 0; h < n_heads; h++) {
    float *p = x + t * ld_token + h * ld_head + offset + 2 * i;
    float a = p[0], b = p[1];
    p[0] = a * c - b * s;
    p[1] = a * s + b * c;
  }
}

int moe_rope(float *x, int64_t ld_token, int64_t ld_head, int64_t n_heads, int64_t offset, const int32_t *positions,
             const float *inv_freq, int64_t T, int64_t rope_dim, void *stream) {
  CHECK_PTR(x); CHECK_PTR(positions); CHECK_PTR(inv_freq); CHECK_NONNEG(T); CHECK_POS(n_heads);
  CHECK(rope_dim > 0 && rope_dim % 2 == 0, "moe_rope: rope_dim must be even and > 0");
  int64_t n = T * (rope_dim / 2);
  if (n == 0) return MOE_OK;
  MOE_LAUNCH(dim3((unsigned)cdiv(n, 256)), 256, 0, stream, rope_kernel)(x, ld_token, ld_head, n_heads, offset, positions, inv_freq, T, rope_dim / 2);
  return moe_launched(__func__);
}

/* Element-wise kernels over [T, cols] with row strides: blockIdx.y walks rows. */
__global__ void silu_mul_kernel(float *out, int64_t ldo, const float *g, int64_t ldg, const float *u, int64_t ldu,
                                int64_t T, int64_t I) {
  int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= I) return;
  for (int64_t t = blockIdx.y; t < T; t += gridDim.y) {
    float a = g[t * ldg + i];
    out[t * ldo + i] = a / (1.0f + expf(-a)) * u[t * ldu + i];
  }
}

static dim3 rows_grid(int64_t T, int64_t cols) { return dim3((unsigned)cdiv(cols, 256), (unsigned)min64(T, 65535)); }

int moe_silu_mul(float *out, int64_t ldo, const float *g, int64_t ldg, const float *u, int64_t ldu, int64_t T,
                 int64_t I, void *stream) {
  CHECK_PTR(out); CHECK_PTR(g); CHECK_PTR(u); CHECK_NONNEG(T); CHECK_POS(I);
  if (T == 0) return MOE_OK;
  MOE_LAUNCH(rows_grid(T, I), 256, 0, stream, silu_mul_kernel)(out, ldo, g, ldg, u, ldu, T, I);
  return moe_launched(__func__);
}

__global__ void add_kernel(float *y, int64_t ldy, const float *x, int64_t ldx, float alpha, int64_t T, int64_t D) {
  int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= D) return;
  for (int64_t t = blockIdx.y; t < T; t += gridDim.y) y[t * ldy + i] += alpha * x[t * ldx + i];
}

int moe_add(float *y, int64_t ldy, const float *x, int64_t ldx, float alpha, int64_t T, int64_t D, void *stream) {
  CHECK_PTR(y); CHECK_PTR(x); CHECK_NONNEG(T); CHECK_POS(D);
  if (T == 0) return MOE_OK;
  MOE_LAUNCH(rows_grid(T, D), 256, 0, stream, add_kernel)(y, ldy, x, ldx, alpha, T, D);
  return moe_launched(__func__);
}
