/* Idle-time weight prefetch. Decode streams the same weight matrices in the same order every
 * step, with gaps between them where DRAM idles (the JS between kernels, single-threaded small
 * kernels like rmsnorm/rope). Each weight-streaming kernel records which weight region followed
 * the previous one (a successor table keyed by the weight's address); when a kernel ends, the
 * region that followed it last time is handed to an idle pool helper, which pulls it toward the
 * caches until the next parallel job starts. A wrong guess only costs bandwidth that was idle;
 * MOE_CPU_PREFETCH=0 turns it off (A/B runs). */
#include <stdatomic.h>
#include <stdlib.h>
#include "common.h"

#define SLOTS 4096
#define MAX_HINT (4 << 20) /* bytes per gap: more than a gap can fetch, less than L3 */

static struct { _Atomic(const char *) key, p; _Atomic int64_t n; } succ[SLOTS];
static _Atomic(const char *) prev;
static _Atomic(const char *) hint_p;
static _Atomic int64_t hint_n;
static int enabled = -1;

/* Fibonacci hashing: the top bits of the product (weights sit at large power-of-two strides,
 * which the low bits of a product would all map to one slot). */
static unsigned slot(const char *p) { return (unsigned)(((uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull) >> 52); }

static int on(void) {
  if (enabled < 0) { const char *e = getenv("MOE_CPU_PREFETCH"); enabled = !(e && e[0] == '0'); }
  return enabled;
}

/* A kernel is about to stream [p, p + bytes): remember it as the successor of the last one. */
void moe_trace_weights(const void *p, int64_t bytes) {
  if (!on() || moe_get_threads() < 2) return;
  const char *q = p, *last = atomic_exchange_explicit(&prev, q, memory_order_relaxed);
  if (!last || last == q) return;
  unsigned s = slot(last);
  atomic_store_explicit(&succ[s].key, last, memory_order_relaxed);
  atomic_store_explicit(&succ[s].p, q, memory_order_relaxed);
  atomic_store_explicit(&succ[s].n, bytes < MAX_HINT ? bytes : MAX_HINT, memory_order_relaxed);
}

/* The kernel that streamed `p` is done: hint what came after it last time. */
void moe_trace_done(const void *p) {
  if (!on() || moe_get_threads() < 2) return;
  unsigned s = slot(p);
  if (atomic_load_explicit(&succ[s].key, memory_order_relaxed) != (const char *)p) return;
  atomic_store_explicit(&hint_n, atomic_load_explicit(&succ[s].n, memory_order_relaxed), memory_order_relaxed);
  atomic_store_explicit(&hint_p, atomic_load_explicit(&succ[s].p, memory_order_relaxed), memory_order_release);
}

/* Called by a spinning helper: prefetches the pending hint's cache lines until it is done or
 * *gen moves past `seen` (a real job arrived). Prefetches, not loads: a remembered region may
 * have been unmapped since (an unloaded model), and a prefetch never faults. */
void moe_hint_drain(const _Atomic uint64_t *gen, uint64_t seen) {
  const char *p = atomic_exchange_explicit(&hint_p, NULL, memory_order_acquire);
  if (!p) return;
  const int64_t n = atomic_load_explicit(&hint_n, memory_order_relaxed);
  for (int64_t off = 0; off < n; off += 1024) {
    if (atomic_load_explicit(gen, memory_order_relaxed) != seen) break;
    for (int64_t l = off; l < off + 1024 && l < n; l += 64) __builtin_prefetch(p + l, 0, 2);
  }
}
