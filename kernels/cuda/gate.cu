/* The DeepSeek-V3 router gate (noaux_tc): the logits x W^T through the matmul engine (weights
 * read once per tile of tokens, not once per token), then one block per token: sigmoid (or
 * softmax) scores in f32, the correction bias used only to choose, group-limited top-k by the
 * sum of each group's top-2 biased scores, weights from the unbiased scores. Ties go to the
 * lowest index, and the weight normalisation sums in choice order, exactly as the CPU. */
#include "gemm.cuh"

#define GATE_THREADS 256
#define NONE 0x7fffffff

/* (v, i) beats (bv, bi): larger value, then lower index (-inf candidates still rank by index). */
static __device__ __forceinline__ bool beats(float v, int i, float bv, int bi) {
  return v > bv || (v == bv && i < bi);
}

__global__ __launch_bounds__(GATE_THREADS) void gate_kernel(int32_t *ids, float *weights, const float *logits,
                                                          const float *bias, int64_t E, int64_t n_group,
                                                          int64_t topk_group, int64_t k, int32_t score_func,
                                                          int32_t norm_topk, float route_scale) {
  MOE_DYN_SMEM(smem);
  float *scores = (float *)smem, *biased = scores + E, *group = biased + E;
  unsigned char *taken = (unsigned char *)(group + n_group);
  __shared__ float red_v[32];
  __shared__ int red_i[32];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nw = blockDim.x >> 5;
  const int64_t t = blockIdx.x;
  int32_t *ids_t = ids + t * k;
  float *w_t = weights + t * k;

  for (int64_t e = tid; e < E; e += blockDim.x) scores[e] = logits[t * E + e];
  __syncthreads();
  if (score_func == MOE_SIGMOID) {
    for (int64_t e = tid; e < E; e += blockDim.x) scores[e] = 1.0f / (1.0f + expf(-scores[e]));
  } else if (tid == 0) { /* the CPU's sequential softmax, for identical rounding */
    float m = scores[0], z = 0.f;
    for (int64_t e = 1; e < E; e++) m = scores[e] > m ? scores[e] : m;
    for (int64_t e = 0; e < E; e++) z += (scores[e] = expf(scores[e] - m));
    for (int64_t e = 0; e < E; e++) scores[e] /= z;
  }
  __syncthreads();
  for (int64_t e = tid; e < E; e += blockDim.x) biased[e] = bias ? scores[e] + bias[e] : scores[e];
  __syncthreads();

  if (n_group > 1) {
    const int64_t per = E / n_group;
    for (int64_t g = warp; g < n_group; g += nw) { /* top two of the group, merged across lanes */
      float a = -INFINITY, b = -INFINITY;
      for (int64_t i = lane; i < per; i += 32) {
        float v = biased[g * per + i];
        if (v > a) b = a, a = v;
        else if (v > b) b = v;
      }
      for (int o = 16; o > 0; o >>= 1) {
        float oa = gpu_shfl_xor(a, o), ob = gpu_shfl_xor(b, o);
        float hi = fmaxf(a, oa), lo = fmaxf(fminf(a, oa), fmaxf(b, ob));
        a = hi, b = lo;
      }
      if (lane == 0) group[g] = bias && per > 1 ? a + b : a; /* no bias: the group's max */
    }
    __syncthreads();
    if (tid == 0) {
      for (int64_t g = 0; g < n_group; g++) taken[g] = 0;
      for (int64_t j = 0; j < topk_group; j++) {
        int64_t best = -1;
        for (int64_t g = 0; g < n_group; g++)
          if (!taken[g] && (best < 0 || group[g] > group[best])) best = g;
        taken[best] = 1;
      }
    }
    __syncthreads();
    for (int64_t e = tid; e < E; e += blockDim.x)
      if (!taken[e / per]) biased[e] = -INFINITY;
    __syncthreads();
  }
  for (int64_t e = tid; e < E; e += blockDim.x) taken[e] = 0;
  __syncthreads();

  for (int64_t j = 0; j < k; j++) { /* block-wide argmax, k times */
    float bv = -INFINITY;
    int bi = NONE;
    for (int64_t e = tid; e < E; e += blockDim.x)
      if (!taken[e] && beats(biased[e], (int)e, bv, bi)) bv = biased[e], bi = (int)e;
    for (int o = 16; o > 0; o >>= 1) {
      float ov = gpu_shfl_xor(bv, o);
      int oi = gpu_shfl_xor(bi, o);
      if (beats(ov, oi, bv, bi)) bv = ov, bi = oi;
    }
    if (lane == 0) red_v[warp] = bv, red_i[warp] = bi;
    __syncthreads();
    if (tid == 0) {
      float v = red_v[0];
      int e = red_i[0];
      for (int i = 1; i < nw; i++)
        if (beats(red_v[i], red_i[i], v, e)) v = red_v[i], e = red_i[i];
      taken[e] = 1;
      ids_t[j] = e;
      w_t[j] = scores[e];
    }
    __syncthreads();
  }
  if (tid == 0) {
    float sum = 0.f;
    for (int64_t j = 0; j < k; j++) sum += w_t[j];
    for (int64_t j = 0; j < k; j++) w_t[j] = (norm_topk ? w_t[j] / sum : w_t[j]) * route_scale;
  }
}

int moe_gate(int32_t *ids, float *weights, const float *x, int64_t ldx, const void *w, int32_t w_dtype,
             const float *bias, int64_t T, int64_t D, int64_t E, int64_t n_group, int64_t topk_group, int64_t k,
             int32_t score_func, int32_t norm_topk, float route_scale, void *stream) {
  CHECK_PTR(ids); CHECK_PTR(weights); CHECK_PTR(x); CHECK_PTR(w);
  CHECK_NONNEG(T); CHECK_POS(D); CHECK_POS(E); CHECK_POS(n_group); CHECK_POS(k);
  CHECK(E % n_group == 0, "moe_gate: %lld experts do not split into %lld groups", (long long)E, (long long)n_group);
  CHECK(topk_group >= 1 && topk_group <= n_group, "moe_gate: topk_group %lld outside [1, %lld]", (long long)topk_group, (long long)n_group);
  CHECK(k <= topk_group * (E / n_group), "moe_gate: k %lld exceeds the experts of the kept groups", (long long)k);
  CHECK(score_func == MOE_SIGMOID || score_func == MOE_SOFTMAX, "moe_gate: unknown score function %d", score_func);
  int st = moe_check_dtype(w_dtype, NULL, __func__);
  if (st) return st;
  size_t smem = (size_t)(2 * E + n_group) * 4 + (size_t)max64(E, n_group);
  CHECK(smem <= 48 * 1024, "moe_gate: %lld experts exceed the device gate's shared memory", (long long)E);
  if (T == 0) return MOE_OK;
  float *logits = NULL; /* [T, E] */
  st = moe_tmp_alloc((void **)&logits, (size_t)(T * E) * sizeof(float), stream, __func__);
  if (st) return st;
  GemmProblem p = {x, NULL, ldx, (const uint8_t *)w, NULL, 0, logits, E, T};
  st = moe_gemm(__func__, &p, 1, E, D, w_dtype, stream);
  if (!st) {
    MOE_LAUNCH(dim3((unsigned)T), GATE_THREADS, smem, stream, gate_kernel)(ids, weights, logits, bias, E, n_group, topk_group, k, score_func, norm_topk, route_scale);
    st = moe_launched(__func__);
  }
  moe_tmp_free(logits, stream);
  return st;
}
