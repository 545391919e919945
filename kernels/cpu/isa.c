/* Run-time ISA dispatch: the best primitive table this CPU supports (AVX-512, else AVX2/FMA,
 * else portable C), or the one MOE_CPU_ISA=portable|avx2|avx512 asks for (benches compare them).
 * Also per-thread scratch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "common.h"

/* ---- portable primitives: the straightforward reference the SIMD paths are tested against -- */
static void nt_portable(const moe_gemm_nt *g, int64_t t0, int64_t t1, int64_t n0, int64_t n1) {
  float *row = moe_scratch(5, g->K);
  const int sh = g->row_scales ? 0 : 7;
  for (int64_t n = n0; n < n1; n++) {
    int64_t r = g->row0 + n, es = moe_dtype_size(g->dtype), nb = (g->ldw + 127) / 128;
    const uint8_t *p = (const uint8_t *)g->w + r * g->ldw * es;
    for (int64_t k = 0; k < g->K; k++)
      row[k] = g->dtype == MOE_F32 ? load_f32(p + 4 * k)
             : g->dtype == MOE_BF16 ? bf16_to_f32(load_u16(p + 2 * k))
             : moe_e4m3_lut[p[k]] * g->scale[(r >> sh) * nb + k / 128];
    for (int64_t t = t0; t < t1; t++) {
      float *o = g->out + t * g->ldo + n;
      float v = moe_dot(g->x + (g->xrows ? g->xrows[t] : t) * g->ldx, row, g->K);
      *o = g->accum ? *o + v : v;
    }
  }
}

static void nn_portable(const moe_gemm_nn *g, int64_t t0, int64_t t1) {
  float *row = moe_scratch(5, g->N);
  int64_t es = moe_dtype_size(g->dtype), nb = (g->ldw + 127) / 128;
  const int sh = g->row_scales ? 0 : 7;
  for (int64_t t = t0; t < t1; t++)
    if (!g->accum) memset(g->out + t * g->ldo, 0, (size_t)g->N * 4);
  for (int64_t k = 0; k < g->K; k++) {
    int64_t r = g->row0 + k;
    const uint8_t *p = (const uint8_t *)g->w + r * g->ldw * es;
    for (int64_t n = 0; n < g->N; n++)
      row[n] = g->dtype == MOE_F32 ? load_f32(p + 4 * n)
             : g->dtype == MOE_BF16 ? bf16_to_f32(load_u16(p + 2 * n))
             : moe_e4m3_lut[p[n]] * g->scale[(r >> sh) * nb + n / 128];
    for (int64_t t = t0; t < t1; t++) {
      float a = g->a[t * g->lda + k], *o = g->out + t * g->ldo;
      for (int64_t n = 0; n < g->N; n++) o[n] += a * row[n];
    }
  }
}

static void softmax_portable(float *p, int64_t n, float scale) {
  float m = -INFINITY, z = 0;
  for (int64_t i = 0; i < n; i++) m = p[i] * scale > m ? p[i] * scale : m;
  for (int64_t i = 0; i < n; i++) z += (p[i] = expf(p[i] * scale - m));
  for (int64_t i = 0; i < n; i++) p[i] /= z;
}

static void silu_mul_portable(float *out, const float *g, const float *u, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

const moe_cpu_ops moe_ops_portable = {"portable", nt_portable, nn_portable, softmax_portable, silu_mul_portable};
const moe_cpu_ops *moe_ops = &moe_ops_portable;

static int has_avx512(void) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  return moe_ops_avx512.gemm_nt && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#else
  return 0;
#endif
}
static int has_avx2(void) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  return moe_ops_avx2.gemm_nt && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("f16c");
#else
  return 0;
#endif
}

/* Selects a table by name ("portable", "avx2", "avx512", or "" for the best); MOE_EINVAL when
 * the CPU (or this build) lacks it. Not in the ABI: tests switch paths with it. */
int moe_cpu_set_isa(const char *name) {
  if (!name || !*name) moe_ops = has_avx512() ? &moe_ops_avx512 : has_avx2() ? &moe_ops_avx2 : &moe_ops_portable;
  else if (strcmp(name, "portable") == 0) moe_ops = &moe_ops_portable;
  else if (strcmp(name, "avx2") == 0 && has_avx2()) moe_ops = &moe_ops_avx2;
  else if (strcmp(name, "avx512") == 0 && has_avx512()) moe_ops = &moe_ops_avx512;
  else return moe_fail(MOE_EINVAL, "moe_cpu_set_isa: %s is not available on this CPU/build", name);
  return MOE_OK;
}

int64_t moe_pf_dist = 8192;

/* MOE_CPU_ISA asks for a path; one the CPU cannot run falls back to the best it can. */
__attribute__((constructor)) static void moe_pick_isa(void) {
  const char *dist = getenv("MOE_CPU_PF_DIST");
  if (dist) moe_pf_dist = atoll(dist);
  const char *want = getenv("MOE_CPU_ISA");
  if (!want || moe_cpu_set_isa(want) != MOE_OK) moe_cpu_set_isa("");
}

const char *moe_cpu_isa(void) { return moe_ops->name; }

/* Grow-only per-thread buffers: the pool's threads live as long as the process, so these are
 * allocated once per shape high-water mark, not per call. */
static _Thread_local struct { float *p; int64_t n; } scratch[6];

float *moe_scratch(int slot, int64_t floats) {
  if (floats < 16) floats = 16;
  if (scratch[slot].n < floats) {
    free(scratch[slot].p);
    scratch[slot].n = 0;
    if (posix_memalign((void **)&scratch[slot].p, 64, (size_t)floats * 4) != 0) { scratch[slot].p = NULL; return NULL; }
    scratch[slot].n = floats;
  }
  return scratch[slot].p;
}
