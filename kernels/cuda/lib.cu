/* Library-level entry points of the device backends: errors, version, devices, memory, streams.
 * Streams are the runtime's own (blocking, so work on the NULL stream still orders with them);
 * every copy is asynchronous on its stream and moe_sync is the only wait. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <mutex>
#include "common.cuh"

static thread_local char last_error[512];

int moe_fail(int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  return status;
}

const char *moe_last_error(void) { return last_error; }
int moe_abi_version(void) { return MOE_ABI_VERSION; }
const char *moe_backend(void) { return MOE_BACKEND_NAME; }
/* Host threads are a CPU-backend notion; the device decides its own parallelism. */
int moe_set_threads(int32_t n) { (void)n; return MOE_OK; }
int moe_get_threads(void) { return 1; }

int moe_check_dtype(int32_t dtype, const float *scale, const char *fn) {
  if (dtype != MOE_F32 && dtype != MOE_BF16 && dtype != MOE_F8E4M3)
    return moe_fail(MOE_EINVAL, "%s: unknown weight dtype %d", fn, dtype);
  if (dtype == MOE_F8E4M3 && scale == NULL)
    return moe_fail(MOE_EINVAL, "%s: an F8E4M3 weight needs its scale_inv", fn);
  return MOE_OK;
}

/* As the CPU library's (cpu/mla.c): the same refusals, word for word. */
int moe_check_kv(int32_t kv_dtype, const float *kv_scale, const char *fn) {
  if (kv_dtype != MOE_F32 && kv_dtype != MOE_BF16 && kv_dtype != MOE_F8E4M3) return moe_fail(MOE_EINVAL, MOE_MSG_KV_DTYPE, fn, kv_dtype);
  if (kv_dtype == MOE_F8E4M3 && !kv_scale) return moe_fail(MOE_EINVAL, MOE_MSG_KV_SCALE, fn);
  return MOE_OK;
}

int moe_gpu_status(gpuError_t e, const char *fn) {
  if (e == gpuSuccess) return MOE_OK;
  gpuGetLastError(); /* clear a non-sticky error so the next call does not report it again */
  return moe_fail(e == gpuErrorMemoryAllocation ? MOE_ENOMEM : MOE_EDEVICE, "%s: %s", fn, gpuGetErrorString(e));
}

int moe_launched(const char *fn) { return moe_gpu_status(gpuGetLastError(), fn); }

/* Devices without memory pools fall back to synchronous allocation (gpuFree waits for the
 * device, so freeing stays safe). */
static bool no_pools = false;

int moe_tmp_alloc(void **p, size_t bytes, void *stream, const char *fn) {
  static bool kept[64];
  if (bytes == 0) bytes = 256;
  gpuError_t e = gpuErrorMemoryAllocation;
  int dev = 0;
  if (gpuGetDevice(&dev) == gpuSuccess && dev >= 0 && dev < 64 && !kept[dev]) {
    gpuKeepPoolMemory(dev);
    kept[dev] = true;
  }
  if (!no_pools) {
    e = gpuMallocAsync(p, bytes, (gpuStream_t)stream);
    if (e != gpuSuccess && e != gpuErrorMemoryAllocation) {
      gpuGetLastError();
      no_pools = true;
    }
  }
  if (no_pools) e = gpuMalloc(p, bytes);
  return moe_gpu_status(e, fn);
}

void moe_tmp_free(void *p, void *stream) {
  if (!p) return;
  if (no_pools || gpuFreeAsync(p, (gpuStream_t)stream) != gpuSuccess) gpuFree(p);
}

/* Host-to-device copies of up to STAGE_BYTES go through a pinned ring: a copy from pageable
 * memory may wait for the stream's earlier work, a copy from pinned memory never does, so a
 * launch that uploads its metadata still returns at once. Each slot remembers (an event) the
 * copy that used it last; reusing a slot waits for that copy only. `host` may be reused as
 * soon as the call returns either way. */
#define STAGE_SLOTS 32
#define STAGE_BYTES (256 * 1024)
#define STAGE_DEVICES 16
struct StageRing {
  unsigned char *host;
  gpuEvent_t ev[STAGE_SLOTS];
  bool used[STAGE_SLOTS];
  int next;
  bool failed;
};
static StageRing rings[STAGE_DEVICES];
static std::mutex rings_lock;

static int h2d(void *dst, const void *src, size_t bytes, void *stream, const char *fn) {
  int dev = -1;
  if (bytes <= STAGE_BYTES && gpuGetDevice(&dev) == gpuSuccess && dev >= 0 && dev < STAGE_DEVICES) {
    std::lock_guard<std::mutex> hold(rings_lock);
    StageRing &r = rings[dev];
    if (!r.host && !r.failed) {
      r.failed = gpuHostAllocPinned((void **)&r.host, (size_t)STAGE_SLOTS * STAGE_BYTES) != gpuSuccess;
      for (int i = 0; i < STAGE_SLOTS && !r.failed; i++) r.failed = gpuEventCreate(&r.ev[i]) != gpuSuccess;
      if (r.failed) gpuGetLastError(); /* fall back to pageable copies */
    }
    if (!r.failed) {
      const int i = r.next;
      r.next = (i + 1) % STAGE_SLOTS;
      if (r.used[i]) {
        int st = moe_gpu_status(gpuEventSynchronize(r.ev[i]), fn);
        if (st) return st;
      }
      unsigned char *slot = r.host + (size_t)i * STAGE_BYTES;
      memcpy(slot, src, bytes);
      int st = moe_gpu_status(gpuMemcpyAsync(dst, slot, bytes, gpuMemcpyHostToDevice, (gpuStream_t)stream), fn);
      if (!st) st = moe_gpu_status(gpuEventRecord(r.ev[i], (gpuStream_t)stream), fn);
      r.used[i] = st == MOE_OK;
      return st;
    }
  }
  return moe_gpu_status(gpuMemcpyAsync(dst, src, bytes, gpuMemcpyHostToDevice, (gpuStream_t)stream), fn);
}

int moe_tmp_upload(void **dev, const void *host, size_t bytes, void *stream, const char *fn) {
  int st = moe_tmp_alloc(dev, bytes, stream, fn);
  if (st) return st;
  st = h2d(*dev, host, bytes, stream, fn);
  if (st) moe_tmp_free(*dev, stream);
  return st;
}

static int *alloc_err_word(void) {
  void *p = NULL;
  if (gpuHostAllocMappedPortable(&p, 4 * sizeof(int)) != gpuSuccess) {
    gpuGetLastError();
    return NULL;
  }
  memset(p, 0, 4 * sizeof(int));
  return (int *)p;
}
int *moe_dev_err(void) {
  static int *word = alloc_err_word();
  return word;
}

/* Reports (once) what a kernel found wrong in device data since the last sync. */
static int take_dev_error(void) {
  volatile int *w = moe_dev_err();
  if (!w || w[0] == 0) return MOE_OK;
  int status = w[0], what = w[1], a = w[2], b = w[3];
  w[0] = 0;
  if (what == DEV_ERR_EMBED_RANGE)
    return moe_fail(status, "moe_embed: token id %d outside the vocabulary [0, %lld)", a, (long long)b);
  if (what == DEV_ERR_KV_SLOT) return moe_fail(status, MOE_MSG_KV_SLOT, "moe_kv_write", (long long)a, (long long)b);
  if (what == DEV_ERR_KV_PAGE_GATHER) return moe_fail(status, MOE_MSG_KV_PAGE, "moe_kv_gather", (long long)a, (long long)b);
  if (what == DEV_ERR_KV_PAGE_ATTEND) return moe_fail(status, MOE_MSG_KV_PAGE, "moe_mla_attend", (long long)a, (long long)b);
  return moe_fail(status, "moe_sync: a kernel reported error %d", what);
}

int moe_device_count(int32_t *count) {
  CHECK_PTR(count);
  int n = 0;
  gpuError_t e = gpuGetDeviceCount(&n);
  if (e != gpuSuccess) {
    /* No driver or no device is an answer, not a failure; the reason stays in moe_last_error. */
    gpuGetLastError();
    *count = 0;
    return moe_fail(MOE_OK, "moe_device_count: %s", gpuGetErrorString(e));
  }
  *count = n;
  return MOE_OK;
}

int moe_set_device(int32_t device) {
  int n = 0;
  if (gpuGetDeviceCount(&n) != gpuSuccess) {
    gpuGetLastError();
    n = 0;
  }
  if (device < 0 || device >= n)
    return moe_fail(MOE_EDEVICE, "moe_set_device: the %s backend has no device %d (%d present)", MOE_BACKEND_NAME, device, n);
  return moe_gpu_status(gpuSetDevice(device), __func__);
}

int moe_alloc(void **out, int64_t bytes) {
  CHECK_PTR(out);
  CHECK_NONNEG(bytes);
  gpuError_t e = gpuMalloc(out, bytes > 0 ? (size_t)bytes : 256);
  if (e == gpuErrorMemoryAllocation) {
    gpuGetLastError();
    return moe_fail(MOE_ENOMEM, "moe_alloc: out of device memory for %lld bytes", (long long)bytes);
  }
  return moe_gpu_status(e, __func__);
}

int moe_free(void *p) { return p ? moe_gpu_status(gpuFree(p), __func__) : MOE_OK; }

static int copy(void *dst, const void *src, int64_t bytes, int kind, void *stream, const char *fn) {
  if (bytes < 0 || (bytes > 0 && (dst == NULL || src == NULL)))
    return moe_fail(MOE_EINVAL, "%s: bad copy of %lld bytes", fn, (long long)bytes);
  if (bytes == 0) return MOE_OK;
  return moe_gpu_status(gpuMemcpyAsync(dst, src, (size_t)bytes, (decltype(gpuMemcpyHostToDevice))kind, (gpuStream_t)stream), fn);
}
int moe_memcpy_h2d(void *dst, const void *src, int64_t bytes, void *stream) {
  if (bytes > 0 && dst && src) return h2d(dst, src, (size_t)bytes, stream, __func__);
  return copy(dst, src, bytes, gpuMemcpyHostToDevice, stream, __func__);
}
int moe_memcpy_d2h(void *dst, const void *src, int64_t bytes, void *stream) {
  return copy(dst, src, bytes, gpuMemcpyDeviceToHost, stream, __func__);
}
int moe_memcpy_d2d(void *dst, const void *src, int64_t bytes, void *stream) {
  return copy(dst, src, bytes, gpuMemcpyDeviceToDevice, stream, __func__);
}

int moe_stream_create(void **out) {
  CHECK_PTR(out);
  return moe_gpu_status(gpuStreamCreate((gpuStream_t *)out), __func__);
}
int moe_stream_destroy(void *stream) {
  return stream ? moe_gpu_status(gpuStreamDestroy((gpuStream_t)stream), __func__) : MOE_OK;
}
int moe_sync(void *stream) {
  int st = moe_gpu_status(gpuStreamSynchronize((gpuStream_t)stream), __func__);
  return st ? st : take_dev_error();
}
