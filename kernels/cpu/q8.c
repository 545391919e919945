/* Approximate int8 GEMV for speculative drafts. The MTP head's logits only need the right argmax
 * almost always (the main model verifies every draft exactly), so its [V, D] weight is quantized
 * once at load to int8 (one f32 scale per row, symmetric absmax) and each call quantizes its
 * activations the same way, per token. The int8 dot products run on AVX-512 VNNI (dpbusd on
 * u8 = x + 128, minus 128 * rowsum), AVX2 (maddubs on |x| and w with x's sign) or portable C;
 * all three give the same int32 sums and turn them into floats the same way, so their outputs
 * are bit-identical. q8_experts.c runs grouped SwiGLU experts on the same row functions (q8.h).
 * CPU-only and outside the kernel ABI: src/kernels/q8.ts opens these symbols itself. The SIMD
 * functions carry target attributes (the file is built for x86-64-v2) and run only when
 * moe_cpu_isa() allows them. */
#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <string.h>
#include "q8.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define AI static inline __attribute__((always_inline))

/* Symmetric absmax quantization of v[0, K): q = round(v * 127 / amax); returns the scale
 * amax / 127. An all-zero row (or one whose largest |value| is below 2^-120, where 127 / amax
 * would overflow) gives scale 0; an Inf or NaN gives scale NaN. Either way q is then all zero.
 * Written to vectorize at the x86-64-v2 baseline; every step is exact IEEE arithmetic, so the
 * result does not depend on how it is vectorized. */
AI float quant_row(int8_t *restrict q, const float *restrict v, int64_t K) {
  /* |v| as bits: unsigned order is float order for non-negative floats, and an unsigned max
   * vectorizes (a float one would not without -ffast-math); above 0x7f7fffff is Inf or NaN. */
  uint32_t mx = 0;
  for (int64_t k = 0; k < K; k++) {
    uint32_t u;
    memcpy(&u, v + k, 4);
    u &= 0x7fffffffu;
    mx = u > mx ? u : mx;
  }
  float amax;
  memcpy(&amax, &mx, 4);
  if (mx > 0x7f7fffffu || amax < 0x1p-120f) {
    memset(q, 0, (size_t)K);
    return mx > 0x7f7fffffu ? NAN : 0.0f;
  }
  /* |v * inv| <= 127 (1 + 2^-24)^2 < 127.5: the rounded values lie in [-127, 127], never
   * -128 (the AVX2 sign trick relies on that). */
  const float inv = 127.0f / amax;
  for (int64_t k = 0; k < K; k++) q[k] = (int8_t)(int32_t)nearbyintf(v[k] * inv);
  return amax / 127.0f;
}

/* The same code built for each ISA (the activations are quantized on every call: AVX-512 runs
 * a 7168-wide row ~4x faster than the SSE baseline). */
static float quant_portable(int8_t *q, const float *v, int64_t K) { return quant_row(q, v, K); }
#if defined(__x86_64__)
#define AVX2 __attribute__((target("avx2")))
#define VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
AVX2 static float quant_avx2(int8_t *q, const float *v, int64_t K) { return quant_row(q, v, K); }
VNNI static float quant_avx512(int8_t *q, const float *v, int64_t K) { return quant_row(q, v, K); }
#endif

/* ---- per call: out[t, n] = sx[t] * scale[n] * dot(xq[t], q[n]) (lin_job: q8.h) ------------- */

/* Every path turns its int32 dot product into the output with these same two roundings. */
static inline float q8_out(int32_t dot, float sx, float sw) { return (float)dot * (sx * sw); }

static void rows_portable(const lin_job *j, int64_t n0, int64_t n1) {
  for (int64_t n = n0; n < n1; n++) {
    const int8_t *w = j->q + n * j->K;
    for (int64_t t = 0; t < j->T; t++) {
      const int8_t *x = j->xq + t * j->Kp;
      int32_t acc = 0;
      for (int64_t k = 0; k < j->K; k++) acc += (int32_t)x[k] * w[k];
      j->out[t * j->N + n] = q8_out(acc, j->sx[t], j->scale[n]);
    }
  }
}

#if defined(__x86_64__)
/* The prefetch walks linearly ahead of a tile's RR rows (adjacent in memory), at least
 * moe_pf_dist bytes, as the BF16/F8 matmuls do (gemm_tmpl.h); a claim first asks for its head. */
static inline const char *pf_base(const int8_t *w, int64_t tile) {
  return (const char *)w + (tile > moe_pf_dist ? tile : moe_pf_dist);
}
static inline void pf_head(const int8_t *w, int64_t bytes) {
  for (int64_t off = 0; off < moe_pf_dist && off < bytes; off += 64) _mm_prefetch((const char *)w + off, _MM_HINT_T0);
}

/* ---- AVX-512 VNNI: 64 bytes per dpbusd, RR rows x TT tokens of accumulators ------------------ */
VNNI AI __m128i hsum4_512(__m512i a, __m512i b, __m512i c, __m512i d) {
  __m512i ab = _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
  __m512i cd = _mm512_add_epi32(_mm512_unpacklo_epi32(c, d), _mm512_unpackhi_epi32(c, d));
  __m512i s = _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
  __m256i h = _mm256_add_epi32(_mm512_castsi512_si256(s), _mm512_extracti64x4_epi64(s, 1));
  return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

/* dpbusd with register operands: with GCC 12's builtin every token's dpbusd re-reads the weight
 * vector from memory (and some accumulators detour through a spare register); this way each
 * weight vector is loaded once per step ([1024 x 256], T = 4: 7.3 us instead of 9.7). */
VNNI AI __m512i dpbusd(__m512i acc, __m512i u8, __m512i s8) {
  __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u8), "v"(s8));
  return acc;
}

VNNI AI void tile_vnni(const lin_job *j, int64_t n, int64_t t, const int RR, const int TT) {
  const int64_t K = j->K;
  const int8_t *w = j->q + n * K;
  const char *pf = pf_base(w, RR * K);
  __m512i acc[4][4], wv[4];
#pragma GCC unroll 4
  for (int r = 0; r < RR; r++)
#pragma GCC unroll 4
    for (int u = 0; u < TT; u++) acc[r][u] = _mm512_setzero_si512();
#define VNNI_STEP(LOADW)                                                                  \
  {                                                                                       \
    _Pragma("GCC unroll 4") for (int r = 0; r < RR; r++) {                                \
      _mm_prefetch(pf + k * RR + r * 64, _MM_HINT_T0);                                    \
      wv[r] = LOADW;                                                                      \
    }                                                                                     \
    _Pragma("GCC unroll 4") for (int u = 0; u < TT; u++) {                                \
      __m512i xv = _mm512_loadu_si512(j->xq + (t + u) * j->Kp + k); /* x + 128 */        \
      _Pragma("GCC unroll 4") for (int r = 0; r < RR; r++)                                \
        acc[r][u] = dpbusd(acc[r][u], xv, wv[r]);                                \
    }                                                                                     \
  }
  int64_t k = 0;
  for (; k + 64 <= K; k += 64) VNNI_STEP(_mm512_loadu_si512(w + r * K + k))
  if (k < K) { /* masked weight loads; the activation rows are zero-padded to Kp */
    const __mmask64 m = (1ull << (K - k)) - 1;
    VNNI_STEP(_mm512_maskz_loadu_epi8(m, w + r * K + k))
  }
#undef VNNI_STEP
#pragma GCC unroll 4
  for (int u = 0; u < TT; u++) {
    float *o = j->out + (t + u) * j->N + n;
    if (RR == 4) {
      __m128i s = hsum4_512(acc[0][u], acc[1][u], acc[2][u], acc[3][u]);
      s = _mm_sub_epi32(s, _mm_slli_epi32(_mm_loadu_si128((const __m128i *)(j->rowsum + n)), 7));
      __m128 sc = _mm_mul_ps(_mm_set1_ps(j->sx[t + u]), _mm_loadu_ps(j->scale + n));
      _mm_storeu_ps(o, _mm_mul_ps(_mm_cvtepi32_ps(s), sc));
    } else {
      uint32_t s = (uint32_t)_mm512_reduce_add_epi32(acc[0][u]) - ((uint32_t)j->rowsum[n] << 7);
      *o = q8_out((int32_t)s, j->sx[t + u], j->scale[n]);
    }
  }
}

#define TILES(TILE, RR)                                              \
  for (int64_t t = 0; t < j->T; t += 4) switch (j->T - t < 4 ? j->T - t : 4) { \
      case 1: TILE(j, n, t, RR, 1); break;                           \
      case 2: TILE(j, n, t, RR, 2); break;                           \
      case 3: TILE(j, n, t, RR, 3); break;                           \
      default: TILE(j, n, t, RR, 4); break;                          \
    }

/* 4 weight rows share each activation load (and one 4-way reduction); the last N % 4 rows go
 * one at a time. Up to 4 tokens per tile: 16 accumulators, 4 weight vectors, 1 activation. */
VNNI static void rows_vnni(const lin_job *j, int64_t n0, int64_t n1) {
  pf_head(j->q + n0 * j->K, (n1 - n0) * j->K);
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4) TILES(tile_vnni, 4)
  for (; n < n1; n++) TILES(tile_vnni, 1)
}

/* ---- AVX2: maddubs(|x|, w * sign(x)) into int16 pairs (at most 2 * 127 * 127, no saturation:
 * quantized values never reach -128), madd with ones into int32 ------------------------------ */
AVX2 AI __m128i hsum4_256(__m256i a, __m256i b, __m256i c, __m256i d) {
  __m256i s = _mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d));
  return _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
}

AVX2 AI void tile_avx2(const lin_job *j, int64_t n, int64_t t, const int RR, const int TT) {
  const int64_t K = j->K;
  const int8_t *w = j->q + n * K;
  const char *pf = pf_base(w, RR * K);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc[4][2], wv[4];
#pragma GCC unroll 4
  for (int r = 0; r < RR; r++)
#pragma GCC unroll 2
    for (int u = 0; u < TT; u++) acc[r][u] = _mm256_setzero_si256();
  int64_t k = 0;
  for (; k + 32 <= K; k += 32) {
#pragma GCC unroll 4
    for (int r = 0; r < RR; r++) {
      if ((k & 32) == 0) _mm_prefetch(pf + k * RR + r * 64, _MM_HINT_T0); /* once per line */
      wv[r] = _mm256_loadu_si256((const __m256i *)(w + r * K + k));
    }
#pragma GCC unroll 2
    for (int u = 0; u < TT; u++) {
      __m256i xv = _mm256_loadu_si256((const __m256i *)(j->xq + (t + u) * j->Kp + k));
      __m256i ax = _mm256_abs_epi8(xv);
#pragma GCC unroll 4
      for (int r = 0; r < RR; r++)
        acc[r][u] = _mm256_add_epi32(acc[r][u], _mm256_madd_epi16(_mm256_maddubs_epi16(ax, _mm256_sign_epi8(wv[r], xv)), ones));
    }
  }
  int32_t tail[4][2] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}};
  for (; k < K; k++)
#pragma GCC unroll 4
    for (int r = 0; r < RR; r++)
#pragma GCC unroll 2
      for (int u = 0; u < TT; u++) tail[r][u] += (int32_t)j->xq[(t + u) * j->Kp + k] * w[r * K + k];
#pragma GCC unroll 2
  for (int u = 0; u < TT; u++) {
    float *o = j->out + (t + u) * j->N + n;
    if (RR == 4) {
      __m128i s = hsum4_256(acc[0][u], acc[1][u], acc[2][u], acc[3][u]);
      s = _mm_add_epi32(s, _mm_setr_epi32(tail[0][u], tail[1][u], tail[2][u], tail[3][u]));
      __m128 sc = _mm_mul_ps(_mm_set1_ps(j->sx[t + u]), _mm_loadu_ps(j->scale + n));
      _mm_storeu_ps(o, _mm_mul_ps(_mm_cvtepi32_ps(s), sc));
    } else {
      __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc[0][u]), _mm256_extracti128_si256(acc[0][u], 1));
      s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
      s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
      *o = q8_out(_mm_cvtsi128_si32(s) + tail[0][u], j->sx[t + u], j->scale[n]);
    }
  }
}

/* 4 rows x up to 2 tokens: 8 accumulators and 4 weight vectors of the 16 registers. */
AVX2 static void rows_avx2(const lin_job *j, int64_t n0, int64_t n1) {
  pf_head(j->q + n0 * j->K, (n1 - n0) * j->K);
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4)
    for (int64_t t = 0; t < j->T; t += 2) {
      if (j->T - t >= 2) tile_avx2(j, n, t, 4, 2);
      else tile_avx2(j, n, t, 4, 1);
    }
  for (; n < n1; n++)
    for (int64_t t = 0; t < j->T; t += 2) {
      if (j->T - t >= 2) tile_avx2(j, n, t, 1, 2);
      else tile_avx2(j, n, t, 1, 1);
    }
}
#endif

/* The path moe_cpu_isa() allows: VNNI under "avx512" when the CPU has it, else AVX2. */
q8_path q8_pick_path(void) {
#if defined(__x86_64__)
  static int vnni = -1;
  if (vnni < 0) { __builtin_cpu_init(); vnni = __builtin_cpu_supports("avx512vnni") ? 1 : 0; }
  const char *isa = moe_cpu_isa();
  if (strcmp(isa, "avx512") == 0 && vnni) return (q8_path){rows_vnni, quant_avx512, 1};
  if (strcmp(isa, "avx512") == 0 || strcmp(isa, "avx2") == 0) return (q8_path){rows_avx2, quant_avx2, 0};
#endif
  return (q8_path){rows_portable, quant_portable, 0};
}

float q8_quant_act(const q8_path *p, int8_t *xq, const float *x, int64_t K, int64_t Kp) {
  const float s = p->quant(xq, x, K);
  memset(xq + K, 0, (size_t)(Kp - K));
  if (p->u8) /* dpbusd multiplies unsigned by signed bytes: store x + 128 (padding 128 * 0) */
    for (int64_t k = 0; k < Kp; k++) xq[k] = (int8_t)((uint8_t)xq[k] ^ 0x80u);
  return s;
}

static void lin_rows(void *p, int64_t g0, int64_t g1) {
  const lin_job *j = p;
  j->rows(j, g0 * 4, g1 * 4 < j->N ? g1 * 4 : j->N);
}

int moe_cpu_q8_linear(float *out, const float *x, const int8_t *q, const float *scale,
                      const int32_t *rowsum, int64_t T, int64_t N, int64_t K) {
  CHECK_PTR(out); CHECK_PTR(x); CHECK_PTR(q); CHECK_PTR(scale); CHECK_PTR(rowsum);
  CHECK_NONNEG(T); CHECK_POS(N); CHECK_POS(K);
  CHECK(K <= Q8_MAX_K, "%s: K %lld exceeds %d (int32 dot products)", __func__, (long long)K, Q8_MAX_K);
  if (T == 0) return MOE_OK;
  /* The caller's scratch: T scales, then T activation rows of Kp bytes (64-aligned). */
  const int64_t Kp = (K + 63) & ~(int64_t)63, head = (T + 15) & ~(int64_t)15;
  float *buf = moe_scratch(Q8_SLOT, head + T * Kp / 4);
  if (!buf) return moe_fail(MOE_ENOMEM, "%s: out of memory for %lld activation rows", __func__, (long long)T);
  int8_t *xq = (int8_t *)(buf + head);
  const q8_path path = q8_pick_path();
  for (int64_t t = 0; t < T; t++) buf[t] = q8_quant_act(&path, xq + t * Kp, x + t * K, K, Kp);
  lin_job j = {out, xq, buf, q, scale, rowsum, T, N, K, Kp, path.rows};
  moe_trace_weights(q, N * K);
  /* Inline below ~256 KiB of weights at T = 1 (less as T grows): there a hand-off costs about
   * what it saves (measured at [1024 x 256]: 3.1 us on one thread, 3.4 on two; 7.3 and 4.3 at
   * T = 4). Else claims of at least ~64 KiB (256 rows of 256): a claim is worth its atomic and
   * the join stays short. */
  if (N * K * (T + 1) < 524288) j.rows(&j, 0, N);
  else {
    int64_t rows = 65536 / K < 16 ? 16 : 65536 / K;
    moe_parallel_for((N + 3) / 4, (rows + 3) / 4, lin_rows, &j);
  }
  moe_trace_done(q);
  return MOE_OK;
}

/* ---- load time: quantize a stored weight ---------------------------------------------------- */
typedef struct {
  int8_t *q; float *scale; int32_t *rowsum;
  const void *w; const float *wscale; int32_t dtype; int64_t K;
  quant_fn quant;
  _Atomic int64_t bad; /* the first row with an Inf/NaN, plus 1 (0: none) */
  _Atomic int oom;
} quant_job;

static void quant_rows(void *p, int64_t n0, int64_t n1) {
  quant_job *j = p;
  float *row = moe_scratch(Q8_SLOT, j->K);
  if (!row) { atomic_store(&j->oom, 1); return; }
  for (int64_t n = n0; n < n1; n++) {
    moe_decode_row(row, j->w, j->wscale, j->dtype, n, j->K);
    int8_t *q = j->q + n * j->K;
    int32_t sum = 0;
    j->scale[n] = j->quant(q, row, j->K);
    for (int64_t k = 0; k < j->K; k++) sum += q[k];
    j->rowsum[n] = sum;
    if (j->scale[n] != j->scale[n]) {
      int64_t cur = atomic_load(&j->bad);
      while ((cur == 0 || n + 1 < cur) && !atomic_compare_exchange_weak(&j->bad, &cur, n + 1)) {}
    }
  }
}

int moe_cpu_q8_quantize(int8_t *q, float *scale, int32_t *rowsum, const void *w, const float *wscale,
                        int32_t dtype, int64_t N, int64_t K) {
  CHECK_PTR(q); CHECK_PTR(scale); CHECK_PTR(rowsum); CHECK_PTR(w);
  CHECK_POS(N); CHECK_POS(K);
  CHECK(K <= Q8_MAX_K, "%s: K %lld exceeds %d (int32 dot products)", __func__, (long long)K, Q8_MAX_K);
  int st = moe_check_dtype(dtype, wscale, __func__);
  if (st) return st;
  quant_job j = {q, scale, rowsum, w, wscale, dtype, K, q8_pick_path().quant, 0, 0};
  moe_parallel_for(N, 65536 / K > 1 ? 65536 / K : 1, quant_rows, &j);
  if (atomic_load(&j.oom)) return moe_fail(MOE_ENOMEM, "%s: out of memory for a row of %lld", __func__, (long long)K);
  int64_t bad = atomic_load(&j.bad);
  if (bad) return moe_fail(MOE_EINVAL, "%s: row %lld holds an Inf or NaN", __func__, (long long)(bad - 1));
  return MOE_OK;
}
