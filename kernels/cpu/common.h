/* Shared helpers of the CPU backend: error reporting, weight decoding, the parallel loop, and the
 * table of ISA-specific primitives (portable, AVX2/FMA, AVX-512) chosen once at load time. */
#ifndef MOE_CPU_COMMON_H
#define MOE_CPU_COMMON_H
#include <stdint.h>
#include <string.h>
#include "../include/moe_kernels.h"
#include "../include/moe_checks.h"

/* Records a formatted message for moe_last_error() and returns the status. */
int moe_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define CHECK(cond, ...) do { if (!(cond)) return moe_fail(MOE_EINVAL, __VA_ARGS__); } while (0)
#define CHECK_PTR(p) CHECK((p) != NULL, "%s: %s is NULL", __func__, #p)
#define CHECK_POS(n) CHECK((n) > 0, "%s: %s must be > 0 (got %lld)", __func__, #n, (long long)(n))
#define CHECK_NONNEG(n) CHECK((n) >= 0, "%s: %s must be >= 0 (got %lld)", __func__, #n, (long long)(n))

extern float moe_e4m3_lut[256];
void moe_init_luts(void);

static inline float bf16_to_f32(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* Weights may be unaligned: every load goes through memcpy, which compiles to a plain move. */
static inline uint16_t load_u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline float load_f32(const uint8_t *p) { float v; memcpy(&v, p, 4); return v; }

int moe_check_dtype(int32_t dtype, const float *scale, const char *fn);
/* A latent cache's kv_dtype and its kv_scale (mla.c; formats in include/moe_kvcache.h). */
int moe_check_kv(int32_t kv_dtype, const float *kv_scale, const char *fn);
static inline int64_t moe_dtype_size(int32_t dtype) { return dtype == MOE_F32 ? 4 : dtype == MOE_BF16 ? 2 : 1; }

/* Decodes W[row, 0..K) into f32 (F8 rows multiplied by their block scales). */
void moe_decode_row(float *dst, const void *w, const float *scale, int32_t dtype, int64_t row,
                    int64_t K);

/* 8-lane dot product: a fixed summation order that the compiler vectorizes. */
static inline float moe_dot(const float *a, const float *b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
  float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

/* Runs fn(ctx, begin, end) over [0, n) split across the worker threads. */
typedef void (*moe_range_fn)(void *ctx, int64_t begin, int64_t end);
void moe_parallel_for(int64_t n, int64_t min_chunk, moe_range_fn fn, void *ctx);

/* Per-thread grow-only scratch (slot < 6; 5 is the portable path's): hot kernels never malloc
 * per call. NULL on OOM. */
float *moe_scratch(int slot, int64_t floats);

/* "NT" matmul: out[t*ldo + n] (+)= sum_{k<K} x[xrow(t)*ldx + k] * W(row0 + n, k), where W row r
 * starts at w + r*ldw elements of the stored dtype and an F8 element (r, k) is scaled by
 * scale[(r/128) * ceil(ldw/128) + k/128] (weights' 128x128 blocks), or by
 * scale[r * ceil(ldw/128) + k/128] when row_scales (the KV cache's per-token tiles).
 * xrow(t) = xrows ? xrows[t] : t. */
typedef struct {
  float *out; int64_t ldo;
  const float *x; int64_t ldx; const int32_t *xrows;
  const void *w; int64_t ldw; const float *scale; int32_t dtype;
  int64_t row0, K;
  int accum;
  int row_scales; /* F8: one scale row per W row instead of per 128 rows */
} moe_gemm_nt;

/* "NN" matmul: out[t*ldo + n] (+)= sum_{k<K} a[t*lda + k] * W(row0 + k, n) for n < N, W as above
 * (so an F8 element (r, n) is scaled by scale[(r/128) * ceil(ldw/128) + n/128], or by
 * scale[r * ceil(ldw/128) + n/128] when row_scales). */
typedef struct {
  float *out; int64_t ldo;
  const float *a; int64_t lda;
  const void *w; int64_t ldw; const float *scale; int32_t dtype;
  int64_t row0, K, N;
  int accum;
  int row_scales;
} moe_gemm_nn;

/* The primitives every ISA implements; each runs on the calling thread only. */
typedef struct {
  const char *name;
  /* tokens [t0, t1), output rows [n0, n1) of an NT problem (cache-blocked and register-tiled). */
  void (*gemm_nt)(const moe_gemm_nt *g, int64_t t0, int64_t t1, int64_t n0, int64_t n1);
  /* tokens [t0, t1) of an NN problem, all N columns. */
  void (*gemm_nn)(const moe_gemm_nn *g, int64_t t0, int64_t t1);
  /* p[i] = exp(p[i] * scale - max) over n, normalized to sum 1 when norm (softmax). */
  void (*softmax)(float *p, int64_t n, float scale);
  /* out[i] = silu(g[i]) * u[i] */
  void (*silu_mul)(float *out, const float *g, const float *u, int64_t n);
} moe_cpu_ops;

extern const moe_cpu_ops *moe_ops;
extern const moe_cpu_ops moe_ops_portable, moe_ops_avx2, moe_ops_avx512;
/* Not in the ABI (CPU library only): the active table's name, and switching it (tests). */
const char *moe_cpu_isa(void);
int moe_cpu_set_isa(const char *name);

/* Idle-time weight prefetch (prefetch.c): kernels report the weight region they stream and
 * when they are done; pool helpers prefetch the region that followed last time. */
void moe_trace_weights(const void *p, int64_t bytes);
void moe_trace_done(const void *p);
void moe_hint_drain(const _Atomic uint64_t *gen, uint64_t seen);

/* How far ahead (bytes) the decode matmuls prefetch streamed weights; MOE_CPU_PF_DIST sets it. */
extern int64_t moe_pf_dist;

/* Parallel NT matmul over T tokens and N output rows (the driver moe_linear uses). */
void moe_gemm_nt_run(const moe_gemm_nt *g, int64_t T, int64_t N);

#endif
