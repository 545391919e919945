/* Grouped int8 SwiGLU experts for drafts: the int8 twin of moe_experts (experts.c), on the int8
 * GEMV's row functions (q8.c). Each expert's W1/W3/W2 are int8 with one scale per row (as
 * moe_cpu_q8_quantize makes them), read once per call for all the rows routed to that expert:
 *   each distinct token's x row is quantized once, into the row slots of every expert it goes to;
 *   A: g = W1_e x, u = W3_e x (items: 64-row runs of W1_e or W3_e);
 *   h = silu(g) * u, quantized per row;
 *   B: y = W2_e h (items: 128-row runs of W2_e);
 *   out[tok] += rw * y, rows in expert order (as moe_experts).
 * A draft's call is small (one token, 4 experts of [128 x 256] in 3 matrices: 0.4 M MACs); the
 * smallest run inline on the caller's thread (INLINE_WORK). Every step after the int32 dot
 * products is the same code on every path (silu included, see below), so the outputs are
 * bit-identical across ISAs and thread counts. */
#include "q8.h"

#define RUN_A 64  /* W1/W3 rows per phase-A item (a multiple of the 4-row tiles) */
#define RUN_B 128 /* W2 rows per phase-B item */
/* Calls with less work than this (weight bytes times rows + 1, summed over the active experts)
 * run inline. Measured with 2 threads on the small model's experts ([128 x 256], AVX-512 VNNI,
 * 2-vCPU VM; median us inline / pooled, the pool's spread over runs): 1 token x 1 expert
 * (0.2 M) 1.9 / 2.1-2.5, x 2 experts (0.39 M) 3.4 / 3.7, x 3 (0.59 M) 5.0 / 4.6, x 4 (0.79 M)
 * 6.7 / 5.1-7.5; 2 tokens x 2 shared experts (0.59 M) 4.8 / 5.0-5.4; 4 tokens x 1 expert
 * (0.49 M) 4.0 / 4.1; 2 tokens x 8 experts (1.57 M) 14.4 / 9.3-15.6. */
#define INLINE_WORK 500000

typedef void (*silu_fn)(float *restrict g, const float *restrict u, int64_t n);

typedef struct {
  float *out; int64_t ldo; const int32_t *offsets, *rows; const float *rw;
  const int8_t *const *q1, *const *q3, *const *q2;
  const float *const *s1, *const *s3, *const *s2;
  const int32_t *const *r1, *const *r3, *const *r2;
  int64_t D, I, Dp, Ip, total;
  const int32_t *active;  /* expert ids with rows, ascending */
  int8_t *xq, *hq;        /* [total, Dp], [total, Ip]: quantized x and h per row slot */
  float *sx, *sh;         /* [total]: their scales */
  float *g, *u, *y;       /* [total, I], [total, I], [total, D] */
  q8_path path;
  silu_fn silu;           /* g = silu(g) * u, this ISA's build */
} q8x_job;

/* Items [i0, i1) of a phase: consecutive runs of one matrix go to the row function as one
 * range (one prefetch head, no restart between runs). */
static void phase_a(void *p, int64_t i0, int64_t i1) {
  const q8x_job *j = p;
  const int64_t runs = (j->I + RUN_A - 1) / RUN_A; /* per matrix */
  for (int64_t i = i0; i < i1;) {
    const int64_t m = i / runs, e = j->active[m / 2], up = m % 2, n0 = (i % runs) * RUN_A;
    i = (m + 1) * runs < i1 ? (m + 1) * runs : i1; /* past this matrix's last item in range */
    const int64_t n1 = (i - m * runs) * RUN_A < j->I ? (i - m * runs) * RUN_A : j->I, r0 = j->offsets[e];
    lin_job l = {(up ? j->u : j->g) + r0 * j->I, j->xq + r0 * j->Dp, j->sx + r0,
                 up ? j->q3[e] : j->q1[e], up ? j->s3[e] : j->s1[e], up ? j->r3[e] : j->r1[e],
                 j->offsets[e + 1] - r0, j->I, j->D, j->Dp, j->path.rows};
    l.rows(&l, n0, n1);
  }
}

static void phase_b(void *p, int64_t i0, int64_t i1) {
  const q8x_job *j = p;
  const int64_t runs = (j->D + RUN_B - 1) / RUN_B;
  for (int64_t i = i0; i < i1;) {
    const int64_t m = i / runs, e = j->active[m], n0 = (i % runs) * RUN_B;
    i = (m + 1) * runs < i1 ? (m + 1) * runs : i1;
    const int64_t n1 = (i - m * runs) * RUN_B < j->D ? (i - m * runs) * RUN_B : j->D, r0 = j->offsets[e];
    lin_job l = {j->y + r0 * j->D, j->hq + r0 * j->Ip, j->sh + r0, j->q2[e], j->s2[e], j->r2[e],
                 j->offsets[e + 1] - r0, j->D, j->I, j->Ip, j->path.rows};
    l.rows(&l, n0, n1);
  }
}

/* silu(g) * u = g / (1 + exp(-g)) * u, built for each ISA as the activation quantizers are
 * (libm's expf is a call per element: ~1 us per draft call). Outputs stay bit-identical across
 * paths because every step is one IEEE operation per element: FMA contraction is off here (it
 * would round p * r + c once where the base build rounds twice). */
#if defined(__clang__)
#pragma clang fp contract(off) /* to the end of the file */
#else
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif
#define AI static inline __attribute__((always_inline))

/* exp(x) for x in [-87, 88] (2^n a normal float, the result finite): Cephes' expf polynomial
 * after x = n ln2 + r, as the exact kernels' vexp (~1e-7 relative). */
AI float exp_clamped(float x) {
  const float m = x * 1.44269504088896341f + 0x1.8p23f; /* n = round(x log2 e) in the low bits */
  const float n = m - 0x1.8p23f;
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + (r + 1.0f);
  uint32_t bits;
  memcpy(&bits, &m, 4);
  bits = (bits - 0x4B400000u + 127u) << 23; /* 2^n */
  float two_n;
  memcpy(&two_n, &bits, 4);
  return p * two_n;
}

/* g = silu(g) * u in blocks of 64. The clamps of -g get a loop of their own: followed by
 * arithmetic in the same loop, GCC keeps them as branches (under -ftrapping-math) and nothing
 * vectorizes. Clamping changes silu only where it is g or ~0 anyway; a NaN passes through. */
AI void silu_mul_body(float *restrict g, const float *restrict u, int64_t n) {
  float x[64];
  for (int64_t i0 = 0; i0 < n; i0 += 64) {
    const int64_t m = n - i0 < 64 ? n - i0 : 64;
    for (int64_t i = 0; i < m; i++) {
      const float v = -g[i0 + i] < -87.0f ? -87.0f : -g[i0 + i];
      x[i] = v > 88.0f ? 88.0f : v;
    }
    for (int64_t i = 0; i < m; i++) g[i0 + i] = g[i0 + i] / (1.0f + exp_clamped(x[i])) * u[i0 + i];
  }
}

static void silu_portable(float *restrict g, const float *restrict u, int64_t n) { silu_mul_body(g, u, n); }
#if defined(__x86_64__)
__attribute__((target("avx2"))) static void silu_avx2(float *restrict g, const float *restrict u, int64_t n) {
  silu_mul_body(g, u, n);
}
__attribute__((target("avx512f"))) static void silu_avx512(float *restrict g, const float *restrict u, int64_t n) {
  silu_mul_body(g, u, n);
}
#endif
#if !defined(__clang__)
#pragma GCC pop_options
#endif

/* The variant moe_cpu_isa() allows. */
static silu_fn pick_silu(void) {
#if defined(__x86_64__)
  const char *isa = moe_cpu_isa();
  if (strcmp(isa, "avx512") == 0) return silu_avx512;
  if (strcmp(isa, "avx2") == 0) return silu_avx2;
#endif
  return silu_portable;
}

/* Rows [r0, r1): h = silu(g) * u (into g), then quantized into hq. */
static void hidden(void *p, int64_t r0, int64_t r1) {
  const q8x_job *j = p;
  for (int64_t r = r0; r < r1; r++) {
    float *g = j->g + r * j->I;
    j->silu(g, j->u + r * j->I, j->I);
    j->sh[r] = q8_quant_act(&j->path, j->hq + r * j->Ip, g, j->I, j->Ip);
  }
}

/* out[rows[r], d] += rw[r] * y[r, d] for r in order, columns [d0, d1) per item. */
static void combine(void *p, int64_t d0, int64_t d1) {
  const q8x_job *j = p;
  for (int64_t r = 0; r < j->total; r++) {
    const float w = j->rw[r], *yr = j->y + r * j->D;
    float *o = j->out + (int64_t)j->rows[r] * j->ldo;
    for (int64_t d = d0; d < d1; d++) o[d] += yr[d] * w;
  }
}

/* The scratch, carved in 64-byte pieces: n floats (or int32s) at *at. */
static void *carve(float **at, int64_t n) {
  void *p = *at;
  *at += (n + 15) & ~(int64_t)15;
  return p;
}

int moe_cpu_q8_experts(float *out, int64_t ldo, const float *x, int64_t ldx, const int32_t *offsets,
                       const int32_t *rows, const float *rw, const int8_t *const *q1,
                       const float *const *s1, const int32_t *const *r1, const int8_t *const *q3,
                       const float *const *s3, const int32_t *const *r3, const int8_t *const *q2,
                       const float *const *s2, const int32_t *const *r2, int64_t E, int64_t D,
                       int64_t I) {
  CHECK_PTR(out); CHECK_PTR(x); CHECK_PTR(offsets);
  CHECK_PTR(q1); CHECK_PTR(s1); CHECK_PTR(r1); CHECK_PTR(q3); CHECK_PTR(s3); CHECK_PTR(r3);
  CHECK_PTR(q2); CHECK_PTR(s2); CHECK_PTR(r2);
  CHECK_POS(E); CHECK_POS(D); CHECK_POS(I);
  CHECK(D <= Q8_MAX_K && I <= Q8_MAX_K, "%s: D %lld or I %lld exceeds %d (int32 dot products)", __func__,
        (long long)D, (long long)I, Q8_MAX_K);
  CHECK(offsets[0] == 0, "%s: offsets[0] must be 0 (got %d)", __func__, offsets[0]);
  int64_t n_active = 0, work = 0;
  for (int64_t e = 0; e < E; e++) {
    const int64_t n = (int64_t)offsets[e + 1] - offsets[e];
    CHECK(n >= 0, "%s: offsets must not decrease (expert %lld)", __func__, (long long)e);
    if (n == 0) continue;
    CHECK(q1[e] && s1[e] && r1[e] && q3[e] && s3[e] && r3[e] && q2[e] && s2[e] && r2[e],
          "%s: expert %lld has rows but no (complete) int8 weights", __func__, (long long)e);
    n_active++;
    work += 3 * D * I * (n + 1);
  }
  const int64_t total = offsets[E];
  if (total == 0) return MOE_OK;
  CHECK_PTR(rows); CHECK_PTR(rw);
  CHECK(ldx >= D && ldo >= D, "%s: row strides ldx %lld, ldo %lld below D %lld", __func__, (long long)ldx,
        (long long)ldo, (long long)D);
  int64_t tokens = 0; /* 1 + the largest token index */
  for (int64_t r = 0; r < total; r++) {
    CHECK(rows[r] >= 0, "%s: row %lld has token index %d", __func__, (long long)r, rows[r]);
    tokens = rows[r] >= tokens ? (int64_t)rows[r] + 1 : tokens;
  }

  /* One scratch block (the token map is at most x's row count, 1/D of x's size). */
  const int64_t Dp = (D + 63) & ~(int64_t)63, Ip = (I + 63) & ~(int64_t)63;
  const int64_t parts[] = {total, total, tokens, n_active, total * I, total * I, total * D, total * Dp / 4, total * Ip / 4};
  int64_t size = 0;
  for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) size += (parts[i] + 15) & ~(int64_t)15;
  float *at = moe_scratch(Q8_SLOT, size);
  if (!at) return moe_fail(MOE_ENOMEM, "%s: out of memory for %lld rows", __func__, (long long)total);
  int32_t *first = carve(&at, tokens), *active = carve(&at, n_active); /* first: token -> row slot */
  q8x_job j = {out, ldo, offsets, rows, rw, q1, q3, q2, s1, s3, s2, r1, r3, r2, D, I, Dp, Ip, total, active,
               .xq = carve(&at, total * Dp / 4), .hq = carve(&at, total * Ip / 4),
               .sx = carve(&at, total), .sh = carve(&at, total),
               .g = carve(&at, total * I), .u = carve(&at, total * I), .y = carve(&at, total * D),
               .path = q8_pick_path(), .silu = pick_silu()};
  for (int64_t e = 0, a = 0; e < E; e++)
    if (offsets[e + 1] > offsets[e]) active[a++] = (int32_t)e;

  /* Each distinct token is quantized once; its later rows copy the bytes and the scale. */
  memset(first, 0xff, (size_t)tokens * 4);
  for (int64_t r = 0; r < total; r++) {
    const int32_t t = rows[r];
    if (first[t] < 0) {
      first[t] = (int32_t)r;
      j.sx[r] = q8_quant_act(&j.path, j.xq + r * Dp, x + t * ldx, D, Dp);
    } else {
      memcpy(j.xq + r * Dp, j.xq + first[t] * Dp, (size_t)Dp);
      j.sx[r] = j.sx[first[t]];
    }
  }

  const int64_t items_a = n_active * 2 * ((I + RUN_A - 1) / RUN_A), items_b = n_active * ((D + RUN_B - 1) / RUN_B);
  if (work < INLINE_WORK) {
    phase_a(&j, 0, items_a);
    hidden(&j, 0, total);
    phase_b(&j, 0, items_b);
    combine(&j, 0, D);
  } else {
    moe_parallel_for(items_a, 1, phase_a, &j);
    moe_parallel_for(total, 16, hidden, &j);
    moe_parallel_for(items_b, 1, phase_b, &j);
    moe_parallel_for(D, total >= 16 ? 64 : D, combine, &j);
  }
  return MOE_OK;
}
