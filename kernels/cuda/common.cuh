/* Shared by the device sources: error reporting and the CPU backend's argument checks (word for
 * word, so both libraries refuse the same calls with the same messages), stream-ordered
 * temporaries, weight decoding and reductions.
 *
 * Memory contract of the device builds (the ABI leaves it to the backend):
 * - Tensors, caches, weights, scales, scratch and the per-token index arrays (ids, positions,
 *   slots, block tables, moe_experts' rows and rw) are DEVICE pointers.
 * - The arrays that fix a launch's shape and that the CPU backend validates by reading them are
 *   HOST pointers: moe_experts' offsets and its six pointer tables (host arrays holding device
 *   pointers), and moe_mla_attend's cu_q and ctx_len. Reading them from the device would force a
 *   synchronisation in the middle of every MoE layer; the router and the scheduler build them
 *   on the host anyway. The kernel copies what it needs with the launch.
 * - Checks that need device data (an embedding id out of range, a KV slot or page outside the
 *   cache, moe_checks.h) are made by
 *   the kernel and reported by the next moe_sync, with the CPU backend's status and message. */
#ifndef MOE_GPU_COMMON_CUH
#define MOE_GPU_COMMON_CUH
#include <stddef.h>
#include <stdint.h>
#include "portability.h"
#include "../include/moe_kernels.h"
#include "../include/moe_checks.h"
#include "../include/moe_kvcache.h"

int moe_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define CHECK(cond, ...) do { if (!(cond)) return moe_fail(MOE_EINVAL, __VA_ARGS__); } while (0)
#define CHECK_PTR(p) CHECK((p) != NULL, "%s: %s is NULL", __func__, #p)
#define CHECK_POS(n) CHECK((n) > 0, "%s: %s must be > 0 (got %lld)", __func__, #n, (long long)(n))
#define CHECK_NONNEG(n) CHECK((n) >= 0, "%s: %s must be >= 0 (got %lld)", __func__, #n, (long long)(n))

int moe_check_dtype(int32_t dtype, const float *scale, const char *fn);
int moe_check_kv(int32_t kv_dtype, const float *kv_scale, const char *fn); /* a latent cache's dtype and scales */
/* MOE_EDEVICE with the runtime's message when a launch (or an earlier async fault) failed. */
int moe_launched(const char *fn);
int moe_gpu_status(gpuError_t e, const char *fn);

/* Stream-ordered temporaries: freed after the work already queued on the stream. */
int moe_tmp_alloc(void **p, size_t bytes, void *stream, const char *fn);
void moe_tmp_free(void *p, void *stream);
int moe_tmp_upload(void **dev, const void *host, size_t bytes, void *stream, const char *fn);

/* The device-side error word: [code, what, a, b]; NULL when it could not be allocated. */
enum { DEV_ERR_EMBED_RANGE = 1, DEV_ERR_KV_SLOT = 2, DEV_ERR_KV_PAGE_GATHER = 3, DEV_ERR_KV_PAGE_ATTEND = 4 };
int *moe_dev_err(void);

/* Plain stores, not atomics: atomics on mapped host memory are not portable across platforms.
 * When several threads fail at once, one report wins (its fields may mix; any is true). */
static __device__ __forceinline__ void dev_raise(int *err, int status, int what, int a, int b) {
  volatile int *w = err;
  if (!w || w[0] != 0) return;
  w[1] = what;
  w[2] = a;
  w[3] = b;
  __threadfence_system();
  w[0] = status;
}

static __host__ __device__ __forceinline__ int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
static __host__ __device__ __forceinline__ int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static __host__ __device__ __forceinline__ int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* e4m3fn: bias 7, 3 mantissa bits, subnormals, no infinities, 0x7f/0xff are NaN. */
static __device__ __forceinline__ float e4m3_to_f32(uint32_t b) {
  uint32_t e = (b >> 3) & 15u, m = b & 7u;
  float v = e ? gpu_u2f(((e + 120u) << 23) | (m << 20)) : (float)m * 0.001953125f;
  if (e == 15u && m == 7u) v = gpu_u2f(0x7fc00000u);
  return (b & 0x80u) ? -v : v;
}
static __device__ __forceinline__ float bf16_to_f32(uint32_t h) { return gpu_u2f(h << 16); }

/* Weights and scales may be unaligned (safetensors does not align tensors): these read bytes. */
static __device__ __forceinline__ float load_f32u(const void *p, int64_t i) {
  const uint8_t *b = (const uint8_t *)p + 4 * i;
  return gpu_u2f((uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24));
}
/* Element i of a stored weight, without its F8 block scale (raw e4m3 value). */
static __device__ __forceinline__ float load_w(const uint8_t *w, int32_t dtype, int64_t i) {
  if (dtype == MOE_F8E4M3) return e4m3_to_f32(w[i]);
  if (dtype == MOE_BF16) return bf16_to_f32((uint32_t)w[2 * i] | ((uint32_t)w[2 * i + 1] << 8));
  return load_f32u(w, i);
}
static __host__ __device__ __forceinline__ int64_t dtype_size(int32_t dtype) {
  return dtype == MOE_F32 ? 4 : dtype == MOE_BF16 ? 2 : 1;
}

template <class T> static __device__ __forceinline__ T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += gpu_shfl_xor(v, o);
  return v;
}
static __device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, gpu_shfl_xor(v, o));
  return v;
}
/* Sum over the block (blockDim.x a multiple of 32, <= 1024); every thread gets the same value,
 * summed in the same order, so results do not depend on scheduling. red: 32 slots of shared. */
template <class T> static __device__ T block_sum(T v, T *red) {
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads(); /* red may still be read by a previous call */
  if (lane == 0) red[w] = v;
  __syncthreads();
  T r = 0;
  for (int i = 0; i < nw; i++) r += red[i];
  return r;
}
static __device__ float block_max(float v, float *red) {
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) red[w] = v;
  __syncthreads();
  float r = red[0];
  for (int i = 1; i < nw; i++) r = fmaxf(r, red[i]);
  return r;
}
#endif
