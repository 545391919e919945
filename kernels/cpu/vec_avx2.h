/* AVX2/FMA/F16C vector vocabulary for the kernel templates: 8 f32 lanes; tails go through a
 * zero-padded stack copy (no masked byte loads before AVX-512). */
#include <immintrin.h>

#define FN(name) name##_avx2
#define ISA_NAME "avx2"
#define VL 8
#define TT_MAX 3 /* NT tile: 4 rows x 3 tokens = 12 accumulators of the 16 registers */
typedef __m256 V;
#define VZERO() _mm256_setzero_ps()
#define VLD(p) _mm256_loadu_ps(p)
#define VST(p, v) _mm256_storeu_ps(p, v)
#define VSET1(f) _mm256_set1_ps(f)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VMUL(a, b) _mm256_mul_ps(a, b)
#define VADD(a, b) _mm256_add_ps(a, b)
#define VSUB(a, b) _mm256_sub_ps(a, b)
#define VDIV(a, b) _mm256_div_ps(a, b)
#define VMAX(a, b) _mm256_max_ps(a, b)

static inline V VLDN(const float *p, int n) { float b[8] = {0}; memcpy(b, p, (size_t)n * 4); return VLD(b); }
static inline void VSTN(float *p, V v, int n) { float b[8]; VST(b, v); memcpy(p, b, (size_t)n * 4); }
static inline float VHSUM(V v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
static inline float VHMAX(V v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
}

static inline V dec_bf16(const uint8_t *p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}
static inline V dec_bf16n(const uint8_t *p, int n) { uint8_t b[16] = {0}; memcpy(b, p, (size_t)n * 2); return dec_bf16(b); }
/* e4m3 -> f32 bits as in vec_avx512.h (the result is w * 2^-120). */
static inline V dec_f8(const uint8_t *p) {
  __m256i d = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p));
  return _mm256_castsi256_ps(_mm256_and_si256(_mm256_slli_epi32(d, 20), _mm256_set1_epi32((int)0x87F00000)));
}
static inline V dec_f8n(const uint8_t *p, int n) { uint8_t b[8] = {0}; memcpy(b, p, (size_t)n); return dec_f8(b); }

static inline __m128 vhsum4(V a, V b, V c, V d) {
  V ab = _mm256_add_ps(_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b));
  V cd = _mm256_add_ps(_mm256_unpacklo_ps(c, d), _mm256_unpackhi_ps(c, d));
  __m256d abd = _mm256_castps_pd(ab), cdd = _mm256_castps_pd(cd);
  V s = _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(abd, cdd)), _mm256_castpd_ps(_mm256_unpackhi_pd(abd, cdd)));
  return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

/* exp(x) as in vec_avx512.h; 2^n goes into the exponent bits (x clamped so n stays normal). */
static inline V vexp(V x) {
  x = _mm256_max_ps(_mm256_min_ps(x, VSET1(88.3f)), VSET1(-87.3f));
  V n = _mm256_round_ps(VMUL(x, VSET1(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  V r = VFMA(n, VSET1(-0.693359375f), x);
  r = VFMA(n, VSET1(2.12194440e-4f), r);
  V p = VSET1(1.9875691500E-4f);
  p = VFMA(p, r, VSET1(1.3981999507E-3f));
  p = VFMA(p, r, VSET1(8.3334519073E-3f));
  p = VFMA(p, r, VSET1(4.1665795894E-2f));
  p = VFMA(p, r, VSET1(1.6666665459E-1f));
  p = VFMA(p, r, VSET1(5.0000001201E-1f));
  p = VFMA(p, VMUL(r, r), VADD(r, VSET1(1.0f)));
  __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return VMUL(p, _mm256_castsi256_ps(e));
}
