/* Library-level entry points of the CPU backend: errors, version, threads, memory. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include "common.h"

static _Thread_local char last_error[512];
float moe_e4m3_lut[256];

int moe_fail(int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  return status;
}

const char *moe_last_error(void) { return last_error; }
int moe_abi_version(void) { return MOE_ABI_VERSION; }
const char *moe_backend(void) { return "cpu"; }

/* e4m3fn: bias 7, 3 mantissa bits, subnormals, no infinities, 0x7f/0xff are NaN. */
__attribute__((constructor)) void moe_init_luts(void) {
  for (int i = 0; i < 256; i++) {
    int sign = i >> 7, exp = (i >> 3) & 15, man = i & 7;
    float v;
    if (exp == 15 && man == 7) v = NAN;
    else if (exp == 0) v = ldexpf((float)man / 8.0f, -6);
    else v = ldexpf(1.0f + (float)man / 8.0f, exp - 7);
    moe_e4m3_lut[i] = sign ? -v : v;
  }
}

int moe_check_dtype(int32_t dtype, const float *scale, const char *fn) {
  if (dtype != MOE_F32 && dtype != MOE_BF16 && dtype != MOE_F8E4M3)
    return moe_fail(MOE_EINVAL, "%s: unknown weight dtype %d", fn, dtype);
  if (dtype == MOE_F8E4M3 && scale == NULL)
    return moe_fail(MOE_EINVAL, "%s: an F8E4M3 weight needs its scale_inv", fn);
  return MOE_OK;
}

void moe_decode_row(float *dst, const void *w, const float *scale, int32_t dtype, int64_t row,
                    int64_t K) {
  if (dtype == MOE_F32) {
    memcpy(dst, (const uint8_t *)w + row * K * 4, (size_t)K * 4);
  } else if (dtype == MOE_BF16) {
    const uint8_t *p = (const uint8_t *)w + row * K * 2;
    for (int64_t k = 0; k < K; k++) dst[k] = bf16_to_f32(load_u16(p + 2 * k));
  } else {
    const uint8_t *p = (const uint8_t *)w + row * K;
    int64_t nb = (K + 127) / 128;
    const uint8_t *srow = (const uint8_t *)(scale + (row / 128) * nb);
    for (int64_t b = 0; b < nb; b++) {
      float s = load_f32(srow + 4 * b);
      int64_t end = (b + 1) * 128 < K ? (b + 1) * 128 : K;
      for (int64_t k = b * 128; k < end; k++) dst[k] = moe_e4m3_lut[p[k]] * s;
    }
  }
}

int moe_alloc(void **out, int64_t bytes) {
  CHECK_PTR(out);
  CHECK_NONNEG(bytes);
  void *p = NULL;
  if (posix_memalign(&p, 64, bytes > 0 ? (size_t)bytes : 64) != 0)
    return moe_fail(MOE_ENOMEM, "moe_alloc: out of memory for %lld bytes", (long long)bytes);
  *out = p;
  return MOE_OK;
}

int moe_free(void *p) { free(p); return MOE_OK; }

static int host_copy(void *dst, const void *src, int64_t bytes, const char *fn) {
  if (bytes < 0 || (bytes > 0 && (dst == NULL || src == NULL)))
    return moe_fail(MOE_EINVAL, "%s: bad copy of %lld bytes", fn, (long long)bytes);
  if (bytes > 0) memmove(dst, src, (size_t)bytes);
  return MOE_OK;
}
int moe_memcpy_h2d(void *dst, const void *src, int64_t bytes, void *stream) {
  (void)stream; return host_copy(dst, src, bytes, __func__);
}
int moe_memcpy_d2h(void *dst, const void *src, int64_t bytes, void *stream) {
  (void)stream; return host_copy(dst, src, bytes, __func__);
}
int moe_memcpy_d2d(void *dst, const void *src, int64_t bytes, void *stream) {
  (void)stream; return host_copy(dst, src, bytes, __func__);
}
int moe_stream_create(void **out) { CHECK_PTR(out); *out = NULL; return MOE_OK; }
int moe_stream_destroy(void *stream) { (void)stream; return MOE_OK; }
int moe_sync(void *stream) { (void)stream; return MOE_OK; }
int moe_device_count(int32_t *count) { CHECK_PTR(count); *count = 0; return MOE_OK; }
int moe_set_device(int32_t device) {
  return device == 0 ? MOE_OK : moe_fail(MOE_EDEVICE, "moe_set_device: the CPU backend has no device %d", device);
}
