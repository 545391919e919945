/* Argument checks shared by every backend, so the CPU library and the device builds refuse the
 * same calls with the same messages. Host code checks host arrays before it touches memory;
 * device code checks device-resident indices in the kernel and reports them at the next moe_sync
 * (kernels/cuda/common.cuh). Plain C, usable from C, C++, CUDA and HIP. */
#ifndef MOE_CHECKS_H
#define MOE_CHECKS_H
#include <stdint.h>

#if defined(__CUDACC__) || defined(__HIPCC__) || defined(MOE_EMU)
#define MOE_CHECK_FN static __host__ __device__ inline
#else
#define MOE_CHECK_FN static inline
#endif

/* KV cache bounds. A cache of n_slots positions (n_pages * page_size rows of kv_cache and
 * pe_cache): a slot names one row, a block table entry one whole page. An index outside the cache
 * would read or write another sequence's cache or memory past it, so it is refused, never clamped. */
MOE_CHECK_FN int moe_slot_ok(int64_t slot, int64_t n_slots) { return slot >= 0 && slot < n_slots; }
MOE_CHECK_FN int moe_page_ok(int64_t page, int64_t page_size, int64_t n_slots) {
  return page >= 0 && page_size > 0 && page < n_slots / page_size;
}

/* printf formats of the refusals: (function, index, bound). */
#define MOE_MSG_KV_SLOT "%s: slot %lld outside the KV cache [0, %lld)"
#define MOE_MSG_KV_PAGE "%s: page %lld outside the KV cache of %lld pages"

#endif
