/* AVX-512 (F, BW, VL, DQ) vector vocabulary for the kernel templates: 16 f32 lanes; tails use
 * masked loads, which never touch bytes past the end (weights may end at a page boundary). */
#include <immintrin.h>

#define FN(name) name##_avx512
#define ISA_NAME "avx512"
#define VL 16
#define TT_MAX 6 /* NT tile: 4 rows x 6 tokens = 24 accumulators of the 32 registers */
typedef __m512 V;
#define VMASK(n) ((__mmask16)((1u << (n)) - 1u))
#define VZERO() _mm512_setzero_ps()
#define VLD(p) _mm512_loadu_ps(p)
#define VLDN(p, n) _mm512_maskz_loadu_ps(VMASK(n), p)
#define VST(p, v) _mm512_storeu_ps(p, v)
#define VSTN(p, v, n) _mm512_mask_storeu_ps(p, VMASK(n), v)
#define VSET1(f) _mm512_set1_ps(f)
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VMUL(a, b) _mm512_mul_ps(a, b)
#define VADD(a, b) _mm512_add_ps(a, b)
#define VSUB(a, b) _mm512_sub_ps(a, b)
#define VDIV(a, b) _mm512_div_ps(a, b)
#define VMAX(a, b) _mm512_max_ps(a, b)
#define VHSUM(v) _mm512_reduce_add_ps(v)
#define VHMAX(v) _mm512_reduce_max_ps(v)

/* bf16 -> f32 is a 16-bit shift into the high half of each lane. */
static inline V dec_bf16(const uint8_t *p) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}
static inline V dec_bf16n(const uint8_t *p, int n) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(VMASK(n), p)), 16));
}
/* e4m3 -> f32 in three integer ops: sign-extend each code to 32 bits, shift the 7 magnitude
 * bits under the f32 exponent (s.0000eeee.mmm...) and mask: the f32 read from those bits is
 * exactly w * 2^-120 (e4m3 subnormals land on f32 subnormals, still exact). The callers fold
 * 2^120 into the block scale and the output (F8_SCALE * F8_OUT), keeping accumulators in the
 * normal range; FMA rounds once per step, so precision follows the accumulator, as usual. */
static inline V f8_bits(__m512i d) {
  return _mm512_castsi512_ps(_mm512_and_si512(_mm512_slli_epi32(d, 20), _mm512_set1_epi32((int)0x87F00000)));
}
static inline V dec_f8(const uint8_t *p) { return f8_bits(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p))); }
static inline V dec_f8n(const uint8_t *p, int n) { return f8_bits(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(VMASK(n), p))); }

/* Four horizontal sums at once: [sum a, sum b, sum c, sum d]. */
static inline __m128 vhsum4(V a, V b, V c, V d) {
  V ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
  V cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
  __m512d abd = _mm512_castps_pd(ab), cdd = _mm512_castps_pd(cd);
  V s = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(abd, cdd)), _mm512_castpd_ps(_mm512_unpackhi_pd(abd, cdd)));
  __m256 h = _mm256_add_ps(_mm512_castps512_ps256(s), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s), 1)));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

/* exp(x): Cephes' expf polynomial after x = n ln2 + r; scalef applies 2^n, underflowing to 0. */
static inline V vexp(V x) {
  x = _mm512_max_ps(_mm512_min_ps(x, VSET1(88.7f)), VSET1(-104.0f));
  V n = _mm512_roundscale_ps(VMUL(x, VSET1(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  V r = VFMA(n, VSET1(-0.693359375f), x);
  r = VFMA(n, VSET1(2.12194440e-4f), r);
  V p = VSET1(1.9875691500E-4f);
  p = VFMA(p, r, VSET1(1.3981999507E-3f));
  p = VFMA(p, r, VSET1(8.3334519073E-3f));
  p = VFMA(p, r, VSET1(4.1665795894E-2f));
  p = VFMA(p, r, VSET1(1.6666665459E-1f));
  p = VFMA(p, r, VSET1(5.0000001201E-1f));
  p = VFMA(p, VMUL(r, r), VADD(r, VSET1(1.0f)));
  return _mm512_scalef_ps(p, n);
}
