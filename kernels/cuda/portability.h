/* One dialect for the device sources: the kernels are written once against the gpu* names and
 * MOE_LAUNCH below, and build with nvcc (CUDA), hipcc (HIP on AMD) or g++ (MOE_EMU: the CPU
 * emulator that runs them without a GPU, for tests). Only what differs between them lives here. */
#ifndef MOE_PORTABILITY_H
#define MOE_PORTABILITY_H

#if defined(MOE_EMU)
#include "emu.h"

#elif defined(__HIP_PLATFORM_AMD__) || defined(__HIPCC__)
#include <hip/hip_runtime.h>
#define MOE_BACKEND_NAME "hip"
#define gpuError_t hipError_t
#define gpuSuccess hipSuccess
#define gpuErrorMemoryAllocation hipErrorOutOfMemory
#define gpuStream_t hipStream_t
#define gpuGetErrorString hipGetErrorString
#define gpuGetLastError hipGetLastError
#define gpuGetDeviceCount hipGetDeviceCount
#define gpuSetDevice hipSetDevice
#define gpuGetDevice hipGetDevice
#define gpuMalloc hipMalloc
#define gpuFree hipFree
#define gpuMallocAsync hipMallocAsync
#define gpuFreeAsync hipFreeAsync
#define gpuMemcpyAsync hipMemcpyAsync
#define gpuMemcpyHostToDevice hipMemcpyHostToDevice
#define gpuMemcpyDeviceToHost hipMemcpyDeviceToHost
#define gpuMemcpyDeviceToDevice hipMemcpyDeviceToDevice
#define gpuStreamCreate hipStreamCreate
#define gpuStreamDestroy hipStreamDestroy
#define gpuStreamSynchronize hipStreamSynchronize
/* Pinned, device-visible host memory (the device-side error word). */
#define gpuHostAllocMappedPortable(p, n) hipHostMalloc((p), (n), hipHostMallocMapped | hipHostMallocPortable)
#define gpuHostAllocPinned(p, n) hipHostMalloc((p), (n), hipHostMallocPortable)
#define gpuEvent_t hipEvent_t
#define gpuEventCreate(e) hipEventCreateWithFlags((e), hipEventDisableTiming)
#define gpuEventRecord hipEventRecord
#define gpuEventSynchronize hipEventSynchronize
/* AMD wavefronts are 64 wide; every shuffle here works on 32-lane groups so the kernels' "warp"
 * is 32 threads on both vendors. */
#define gpu_shfl_xor(v, m) __shfl_xor((v), (m), 32)
/* Stream-ordered temporaries come from the default pool; keep its memory between syncs. */
static inline void gpuKeepPoolMemory(int dev) {
  hipMemPool_t p;
  uint64_t keep = ~0ull;
  if (hipDeviceGetDefaultMemPool(&p, dev) == hipSuccess) (void)hipMemPoolSetAttribute(p, hipMemPoolAttrReleaseThreshold, &keep);
  (void)hipGetLastError();
}
#define gpu_syncwarp() __syncthreads_no_op_warp()
static __device__ __forceinline__ void __syncthreads_no_op_warp() { __builtin_amdgcn_wave_barrier(); }

#else /* CUDA */
#include <cuda_runtime.h>
#define MOE_BACKEND_NAME "cuda"
#define MOE_HAVE_WMMA 1 /* bf16 tensor cores via nvcuda::wmma (sm_80+) */
#include <cuda_bf16.h>
#include <mma.h>
#define gpuError_t cudaError_t
#define gpuSuccess cudaSuccess
#define gpuErrorMemoryAllocation cudaErrorMemoryAllocation
#define gpuStream_t cudaStream_t
#define gpuGetErrorString cudaGetErrorString
#define gpuGetLastError cudaGetLastError
#define gpuGetDeviceCount cudaGetDeviceCount
#define gpuSetDevice cudaSetDevice
#define gpuGetDevice cudaGetDevice
#define gpuMalloc cudaMalloc
#define gpuFree cudaFree
#define gpuMallocAsync cudaMallocAsync
#define gpuFreeAsync cudaFreeAsync
#define gpuMemcpyAsync cudaMemcpyAsync
#define gpuMemcpyHostToDevice cudaMemcpyHostToDevice
#define gpuMemcpyDeviceToHost cudaMemcpyDeviceToHost
#define gpuMemcpyDeviceToDevice cudaMemcpyDeviceToDevice
#define gpuStreamCreate cudaStreamCreate
#define gpuStreamDestroy cudaStreamDestroy
#define gpuStreamSynchronize cudaStreamSynchronize
#define gpuHostAllocMappedPortable(p, n) cudaHostAlloc((p), (n), cudaHostAllocMapped | cudaHostAllocPortable)
#define gpuHostAllocPinned(p, n) cudaHostAlloc((p), (n), cudaHostAllocPortable)
#define gpuEvent_t cudaEvent_t
#define gpuEventCreate(e) cudaEventCreateWithFlags((e), cudaEventDisableTiming)
#define gpuEventRecord cudaEventRecord
#define gpuEventSynchronize cudaEventSynchronize
#define gpu_shfl_xor(v, m) __shfl_xor_sync(0xffffffffu, (v), (m))
/* Stream-ordered temporaries come from the default pool; keep its memory between syncs. */
static inline void gpuKeepPoolMemory(int dev) {
  cudaMemPool_t p;
  uint64_t keep = ~0ull;
  if (cudaDeviceGetDefaultMemPool(&p, dev) == cudaSuccess) cudaMemPoolSetAttribute(p, cudaMemPoolAttrReleaseThreshold, &keep);
  cudaGetLastError();
}
#define gpu_syncwarp() __syncwarp()
typedef __nv_bfloat16 gpu_bf16;
#define gpu_f2bf(f) __float2bfloat16_rn(f)
#define gpu_bf2f(b) __bfloat162float(b)
#endif

#if !defined(MOE_EMU)
/* Kernel launch: `MOE_LAUNCH(grid, block, smem, stream, kernel)(args...)`. The emulator cannot
 * parse <<<>>>, so every launch goes through this one macro. */
#define MOE_LAUNCH(g, b, smem, stream, ...) __VA_ARGS__<<<(g), (b), (smem), (gpuStream_t)(stream)>>>
#define MOE_DYN_SMEM(name) extern __shared__ __align__(16) unsigned char name[]
static __device__ __forceinline__ float gpu_u2f(uint32_t u) { return __uint_as_float(u); }
static __device__ __forceinline__ uint32_t gpu_f2u(float f) { return __float_as_uint(f); }
#endif

#endif
