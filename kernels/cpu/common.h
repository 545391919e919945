/* Shared helpers of the CPU backend: error reporting, weight decoding, the parallel loop. */
#ifndef MOE_CPU_COMMON_H
#define MOE_CPU_COMMON_H
#include <stdint.h>
#include <string.h>
#include "../include/moe_kernels.h"

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

#endif
