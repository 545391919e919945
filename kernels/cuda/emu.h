/* A CPU emulator of the CUDA subset the kernels use, so the device sources build with g++ and
 * run (slowly) where there is no GPU: the GPU tests run against it on every machine, and it
 * checks what a real launch would reject (block size, dynamic shared memory, wmma alignment).
 * Every GPU thread of a block is a fiber on the calling OS thread; __syncthreads, __syncwarp and
 * shuffles switch fibers, so barrier semantics (and divergent-barrier deadlocks) are real.
 * Blocks run one after another and launches from different OS threads take turns (a lock), so
 * __shared__ is a plain static and the thread coordinates are plain globals (thread-locals cost
 * a call per access in a shared library, which made the emulator three times slower). */
#ifndef MOE_EMU_H
#define MOE_EMU_H
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define MOE_BACKEND_NAME "emu"
#define MOE_HAVE_WMMA 1

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) uint2 { unsigned x, y; };
struct alignas(16) uint4 { unsigned x, y, z, w; };
struct alignas(8) int2 { int x, y; };

namespace emu {
#define EMU_HIDDEN __attribute__((visibility("hidden")))
extern EMU_HIDDEN dim3 thread_idx, block_idx, block_dim, grid_dim;
void launch(dim3 g, dim3 b, size_t smem, void (*tramp)(void *), void *ctx);
void sync_block();
void sync_warp();
uint64_t xchg_xor(uint64_t v, int mask);
unsigned char *dyn_smem();
/* The lanes of a warp run one after another and repeat lane 0's mma calls with the same tiles:
 * lane 0 records (a, b, c) -> d; the others replay on a byte-exact match instead of recomputing. */
bool mma_replay(const void *a, const void *b, const float *c, float *d);
void mma_record(const void *a, const void *b, const float *c, const float *d);
void fail(const char *what); /* aborts: a kernel did what a GPU would not allow */

template <class... P> struct Kernel {
  void (*f)(P...);
  dim3 g, b;
  size_t smem;
  template <class... A> void operator()(A &&...a) const {
    std::tuple<P...> args(std::forward<A>(a)...);
    auto call = [&]() { std::apply(f, args); };
    launch(g, b, smem, [](void *c) { (*static_cast<decltype(call) *>(c))(); }, &call);
  }
};
template <class... P> Kernel<P...> bind(void (*f)(P...), dim3 g, dim3 b, size_t smem) { return {f, g, b, smem}; }

template <class T> T shfl_xor(T v, int mask) {
  static_assert(sizeof(T) <= 8, "shuffle of a wide type");
  uint64_t u = 0;
  memcpy(&u, &v, sizeof(T));
  u = xchg_xor(u, mask);
  T r;
  memcpy(&r, &u, sizeof(T));
  return r;
}
} // namespace emu

#define threadIdx (::emu::thread_idx)
#define blockIdx (::emu::block_idx)
#define blockDim (::emu::block_dim)
#define gridDim (::emu::grid_dim)
#define __syncthreads() ::emu::sync_block()
#define gpu_syncwarp() ::emu::sync_warp()
#define gpu_shfl_xor(v, m) ::emu::shfl_xor((v), (m))
#define MOE_LAUNCH(g, b, smem, stream, ...) ::emu::bind(__VA_ARGS__, dim3(g), dim3(b), (smem))
#define MOE_DYN_SMEM(name) unsigned char *name = ::emu::dyn_smem()

/* Fibers never preempt each other, so plain read-modify-writes are atomic. */
template <class T> inline T atomicAdd(T *p, T v) { T o = *p; *p = o + v; return o; }
template <class T> inline T atomicMax(T *p, T v) { T o = *p; if (v > o) *p = v; return o; }
template <class T> inline T atomicCAS(T *p, T cmp, T v) { T o = *p; if (o == cmp) *p = v; return o; }
inline void __threadfence_system() {}
inline float gpu_u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
inline uint32_t gpu_f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* ---- host runtime ---- */
typedef int gpuError_t;
typedef void *gpuStream_t;
enum { gpuSuccess = 0, gpuErrorInvalidValue = 1, gpuErrorMemoryAllocation = 2, gpuErrorInvalidConfiguration = 9,
       gpuErrorInvalidDevice = 101 };
enum { gpuMemcpyHostToDevice = 1, gpuMemcpyDeviceToHost = 2, gpuMemcpyDeviceToDevice = 3 };
const char *gpuGetErrorString(gpuError_t e);
gpuError_t gpuGetLastError();
gpuError_t gpuGetDeviceCount(int *n);
gpuError_t gpuSetDevice(int d);
gpuError_t gpuGetDevice(int *d);
gpuError_t gpuMalloc(void **p, size_t n);
gpuError_t gpuFree(void *p);
inline gpuError_t gpuMallocAsync(void **p, size_t n, gpuStream_t) { return gpuMalloc(p, n); }
inline gpuError_t gpuFreeAsync(void *p, gpuStream_t) { return gpuFree(p); }
inline gpuError_t gpuHostAllocMappedPortable(void **p, size_t n) { return gpuMalloc(p, n); }
inline gpuError_t gpuHostAllocPinned(void **p, size_t n) { return gpuMalloc(p, n); }
typedef int gpuEvent_t; /* copies are synchronous here: events are always complete */
inline gpuError_t gpuEventCreate(gpuEvent_t *e) { *e = 0; return gpuSuccess; }
inline gpuError_t gpuEventRecord(gpuEvent_t, gpuStream_t) { return gpuSuccess; }
inline gpuError_t gpuEventSynchronize(gpuEvent_t) { return gpuSuccess; }
gpuError_t gpuMemcpyAsync(void *dst, const void *src, size_t n, int kind, gpuStream_t s);
gpuError_t gpuStreamCreate(gpuStream_t *s);
gpuError_t gpuStreamDestroy(gpuStream_t s);
inline gpuError_t gpuStreamSynchronize(gpuStream_t) { return gpuSuccess; }
inline void gpuKeepPoolMemory(int) {}

/* ---- bf16 and the wmma subset (each lane holds the whole 16x16 tile) ---- */
struct gpu_bf16 { uint16_t bits; };
inline gpu_bf16 gpu_f2bf(float f) {
  uint32_t u = gpu_f2u(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return gpu_bf16{(uint16_t)((u >> 16) | 0x40)};
  return gpu_bf16{(uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16)};
}
inline float gpu_bf2f(gpu_bf16 b) { return gpu_u2f((uint32_t)b.bits << 16); }

namespace nvcuda { namespace wmma {
struct matrix_a {}; struct matrix_b {}; struct accumulator {}; struct row_major {}; struct col_major {};
enum layout_t { mem_row_major, mem_col_major };
/* x[] is the tile in logical row-major order: a[m][k], b[k][n], acc[m][n]. */
template <class Use, int M, int N, int K, class T, class L = void> struct fragment {
  static constexpr int num_elements = 256;
  T x[256];
};
template <class U, class T, class L> void fill_fragment(fragment<U, 16, 16, 16, T, L> &f, T v) {
  for (int i = 0; i < 256; i++) f.x[i] = v;
}
inline void check_ptr(const void *p, unsigned ldm, unsigned esize) {
  if ((uintptr_t)p % 32) ::emu::fail("wmma: tile pointer not 256-bit aligned");
  if ((ldm * esize) % 16) ::emu::fail("wmma: ldm not a multiple of 16 bytes");
}
template <class L> void load_matrix_sync(fragment<matrix_a, 16, 16, 16, gpu_bf16, L> &f, const gpu_bf16 *p, unsigned ldm) {
  check_ptr(p, ldm, 2);
  for (int m = 0; m < 16; m++)
    for (int k = 0; k < 16; k++) f.x[m * 16 + k] = std::is_same<L, row_major>::value ? p[m * ldm + k] : p[k * ldm + m];
}
template <class L> void load_matrix_sync(fragment<matrix_b, 16, 16, 16, gpu_bf16, L> &f, const gpu_bf16 *p, unsigned ldm) {
  check_ptr(p, ldm, 2);
  for (int k = 0; k < 16; k++)
    for (int n = 0; n < 16; n++) f.x[k * 16 + n] = std::is_same<L, row_major>::value ? p[k * ldm + n] : p[n * ldm + k];
}
template <class LA, class LB>
void mma_sync(fragment<accumulator, 16, 16, 16, float> &d, const fragment<matrix_a, 16, 16, 16, gpu_bf16, LA> &a,
              const fragment<matrix_b, 16, 16, 16, gpu_bf16, LB> &b, const fragment<accumulator, 16, 16, 16, float> &c) {
  if (::emu::mma_replay(a.x, b.x, c.x, d.x)) return;
  float fa[256], fb[256], r[256]; /* loop order m, k, n: the n loop vectorises */
  for (int i = 0; i < 256; i++) fa[i] = gpu_bf2f(a.x[i]), fb[i] = gpu_bf2f(b.x[i]), r[i] = 0.f;
  for (int m = 0; m < 16; m++)
    for (int k = 0; k < 16; k++)
      for (int n = 0; n < 16; n++) r[m * 16 + n] += fa[m * 16 + k] * fb[k * 16 + n];
  for (int i = 0; i < 256; i++) r[i] += c.x[i];
  ::emu::mma_record(a.x, b.x, c.x, r);
  memcpy(d.x, r, sizeof r);
}
inline void store_matrix_sync(float *p, const fragment<accumulator, 16, 16, 16, float> &f, unsigned ldm, layout_t l) {
  check_ptr(p, ldm, 4);
  for (int m = 0; m < 16; m++)
    for (int n = 0; n < 16; n++) (l == mem_row_major ? p[m * ldm + n] : p[n * ldm + m]) = f.x[m * 16 + n];
}
}} // namespace nvcuda::wmma
#endif
