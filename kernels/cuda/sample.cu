/* Sampling helpers: argmax, log-softmax and one draw under temperature / top-k / top-p / min-p.
 * The draw needs positions in the CPU's sort order (probability descending, then id ascending)
 * without sorting: a radix select over the 64-bit key (~bits(p) << 32 | id) finds the element at
 * a given rank or where the cumulative probability crosses a threshold. Probabilities are summed
 * as 2^-52 fixed point in integer atomics, which are exact, so the draw is deterministic. */
#include "common.cuh"

#define ROW_THREADS 256
#define SAMPLE_THREADS 1024
#define NONE 0x7fffffff

/* (v, i) beats (bv, bi): larger value, then the first index (the CPU's first maximum). */
static __device__ __forceinline__ bool beats(float v, int i, float bv, int bi) {
  return v > bv || (v == bv && i < bi);
}

__global__ __launch_bounds__(ROW_THREADS) void argmax_kernel(int32_t *ids, const float *logits, int64_t V) {
  __shared__ float rv[32];
  __shared__ int ri[32];
  const float *l = logits + (int64_t)blockIdx.x * V;
  float bv = -INFINITY;
  int bi = NONE;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x)
    if (beats(l[v], (int)v, bv, bi)) bv = l[v], bi = (int)v;
  for (int o = 16; o > 0; o >>= 1) {
    float ov = gpu_shfl_xor(bv, o);
    int oi = gpu_shfl_xor(bi, o);
    if (beats(ov, oi, bv, bi)) bv = ov, bi = oi;
  }
  if ((threadIdx.x & 31) == 0) rv[threadIdx.x >> 5] = bv, ri[threadIdx.x >> 5] = bi;
  __syncthreads();
  if (threadIdx.x == 0) {
    float v = rv[0];
    int i = ri[0];
    for (int w = 1; w < (int)(blockDim.x >> 5); w++)
      if (beats(rv[w], ri[w], v, i)) v = rv[w], i = ri[w];
    ids[blockIdx.x] = i == NONE ? 0 : i;
  }
}

int moe_argmax(int32_t *ids, const float *logits, int64_t T, int64_t V, void *stream) {
  CHECK_PTR(ids); CHECK_PTR(logits); CHECK_NONNEG(T); CHECK_POS(V);
  if (T == 0) return MOE_OK;
  MOE_LAUNCH(dim3((unsigned)T), ROW_THREADS, 0, stream, argmax_kernel)(ids, logits, V);
  return moe_launched(__func__);
}

/* The normaliser in double, as the CPU; out may alias logits (all reads precede the writes). */
__global__ __launch_bounds__(ROW_THREADS) void log_softmax_kernel(float *out, const float *logits, int64_t V) {
  __shared__ float rf[32];
  __shared__ double rd[32];
  const float *l = logits + (int64_t)blockIdx.x * V;
  float m = -INFINITY;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) m = fmaxf(m, l[v]);
  m = block_max(m, rf);
  double z = 0;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) z += exp((double)(l[v] - m));
  z = block_sum(z, rd);
  const float lz = m + (float)log(z);
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) out[(int64_t)blockIdx.x * V + v] = l[v] - lz;
}

int moe_log_softmax(float *out, const float *logits, int64_t T, int64_t V, void *stream) {
  CHECK_PTR(out); CHECK_PTR(logits); CHECK_NONNEG(T); CHECK_POS(V);
  if (T == 0) return MOE_OK;
  MOE_LAUNCH(dim3((unsigned)T), ROW_THREADS, 0, stream, log_softmax_kernel)(out, logits, V);
  return moe_launched(__func__);
}

struct Hist {
  unsigned cnt[256];
  unsigned long long sum[256];
  int64_t any[256];
  int chosen;
  int64_t single, acc_cnt;
  unsigned long long acc_sum;
};
struct Sel {
  bool found;
  uint64_t key;
  int64_t rank;             /* position in the sorted order */
  unsigned long long before; /* fixed-point mass of everything sorted before it */
};
enum { BY_RANK, MASS_GE, MASS_GT };

static __device__ __forceinline__ uint64_t sort_key(const float *p, int64_t v) {
  return ((uint64_t)(~gpu_f2u(p[v])) << 32) | (uint64_t)v;
}
static __device__ __forceinline__ unsigned long long fixp(float p) {
  return (unsigned long long)((double)p * 4503599627370496.0 + 0.5); /* p * 2^52, rounded */
}

/* The first element in sorted order meeting the criterion; 8 passes of 8 bits at most. */
static __device__ Sel radix_select(const float *p, int64_t V, int mode, double X, int64_t r, Hist &h) {
  const int tid = threadIdx.x;
  uint64_t prefix = 0;
  if (tid == 0) h.acc_cnt = 0, h.acc_sum = 0;
  for (int level = 0; level < 8; level++) {
    const int shift = 56 - 8 * level;
    for (int b = tid; b < 256; b += blockDim.x) h.cnt[b] = 0, h.sum[b] = 0;
    __syncthreads();
    for (int64_t v = tid; v < V; v += blockDim.x) {
      const uint64_t k = sort_key(p, v);
      if (level > 0 && (k >> (shift + 8)) != prefix) continue;
      const int b = (int)((k >> shift) & 255);
      atomicAdd(&h.cnt[b], 1u);
      atomicAdd(&h.sum[b], fixp(p[v]));
      h.any[b] = v; /* meaningful only when the bucket holds one element */
    }
    __syncthreads();
    if (tid == 0) {
      h.chosen = -1;
      for (int b = 0; b < 256; b++) {
        if (h.cnt[b] == 0) continue;
        const unsigned long long s = h.acc_sum + h.sum[b];
        const bool hit = mode == BY_RANK ? h.acc_cnt + h.cnt[b] > r : mode == MASS_GE ? (double)s >= X : (double)s > X;
        if (hit) {
          h.chosen = b;
          break;
        }
        h.acc_cnt += h.cnt[b];
        h.acc_sum = s;
      }
      h.single = h.chosen >= 0 && h.cnt[h.chosen] == 1 ? h.any[h.chosen] : -1;
    }
    __syncthreads();
    Sel out = {false, 0, h.acc_cnt, h.acc_sum};
    const int chosen = h.chosen;
    const int64_t single = h.single;
    prefix = (prefix << 8) | (uint64_t)(chosen < 0 ? 0 : chosen);
    __syncthreads(); /* h is rewritten by the next pass */
    if (chosen < 0) return out;
    if (single >= 0 || level == 7) {
      out.found = true;
      out.key = single >= 0 ? sort_key(p, single) : prefix;
      return out;
    }
  }
  return Sel{false, 0, 0, 0};
}

__global__ __launch_bounds__(SAMPLE_THREADS) void sample_kernel(int32_t *id, const float *logits, int64_t V, float temp,
                                                              int32_t top_k, float top_p, float min_p, float u, float *p) {
  __shared__ Hist h;
  __shared__ float rf[32];
  __shared__ double rd[32];
  float m = -INFINITY;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) m = fmaxf(m, logits[v] / temp);
  m = block_max(m, rf);
  double z = 0;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) z += (p[v] = expf(logits[v] / temp - m));
  z = block_sum(z, rd);
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) p[v] = (float)((double)p[v] / z);
  __syncthreads();
  int64_t n = V;
  if (top_k > 0 && top_k < n) n = top_k;
  if (top_p < 1) { /* the smallest prefix whose mass reaches top_p */
    Sel s = radix_select(p, V, MASS_GE, (double)top_p * 4503599627370496.0, 0, h);
    if (s.found && s.rank < n) n = s.rank + 1;
  }
  if (min_p > 0) { /* keep the prefix with p >= max p * min_p (at least one) */
    float pmax = 0.f;
    for (int64_t v = threadIdx.x; v < V; v += blockDim.x) pmax = fmaxf(pmax, p[v]);
    const float floor_p = block_max(pmax, rf) * min_p;
    double cnt = 0;
    for (int64_t v = threadIdx.x; v < V; v += blockDim.x) cnt += p[v] >= floor_p;
    cnt = block_sum(cnt, rd);
    n = min64(n, max64(1, (int64_t)cnt));
  }
  const Sel last = radix_select(p, V, BY_RANK, 0, n - 1, h);
  const unsigned long long total = last.before + fixp(p[last.key & 0xffffffffu]);
  const Sel pick = radix_select(p, V, MASS_GT, (double)u * (double)total, 0, h);
  const uint64_t key = pick.found && pick.rank < n ? pick.key : last.key;
  if (threadIdx.x == 0) *id = (int32_t)(key & 0xffffffffu);
}

int moe_sample(int32_t *id, const float *logits, int64_t V, float temperature, int32_t top_k, float top_p, float min_p,
               float u, float *scratch, void *stream) {
  CHECK_PTR(id); CHECK_PTR(logits); CHECK_POS(V);
  CHECK(temperature > 0, "moe_sample: temperature must be > 0 (use argmax for greedy)");
  CHECK(u >= 0 && u < 1, "moe_sample: the uniform draw must lie in [0, 1)");
  CHECK(V <= NONE, "moe_sample: vocabulary of %lld exceeds 2^31", (long long)V);
  float *p = scratch;
  if (!p) {
    int st = moe_tmp_alloc((void **)&p, (size_t)V * sizeof(float), stream, __func__);
    if (st) return st;
  }
  MOE_LAUNCH(dim3(1), SAMPLE_THREADS, 0, stream, sample_kernel)(id, logits, V, temperature, top_k, top_p, min_p, u, p);
  int st = moe_launched(__func__);
  if (p != scratch) moe_tmp_free(p, stream);
  return st;
}
