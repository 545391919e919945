/* The CPU worker threads: a persistent pool. A decode step makes ~100 kernel calls of tens of
 * microseconds each, so waking a thread through a condition variable per call (~10-50 us) would
 * cost as much as the math: helpers spin on an atomic job counter for a while after each job
 * and only then park on a condition variable. Chunks are claimed with an atomic counter, and
 * the caller waits only for helpers that actually joined the job: on a busy machine a helper
 * that is not scheduled in time simply misses the job instead of stalling it. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>
#include "common.h"

#define MAX_THREADS 64
#define SPIN_NS 300000 /* ~0.3 ms: longer than the JS between two kernels of a step */

static pthread_mutex_t call_mu = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local int in_worker; /* nested calls (a kernel inside a kernel) run inline */

static struct {
  pthread_mutex_t mu;
  pthread_cond_t wake;
  int n_threads;          /* including the caller */
  int started;            /* spawned helper threads */
  _Atomic uint64_t generation;
  _Atomic int sleeping;   /* helpers parked on `wake` */
  _Atomic int busy;       /* helpers inside the current job */
  _Atomic uint64_t closed; /* the last job whose caller stopped accepting helpers */
  _Atomic int64_t next;   /* next chunk start */
  moe_range_fn fn;
  void *ctx;
  int64_t n, chunk;
  int active;             /* helpers that take part in the current job */
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static inline void cpu_relax(void) {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#endif
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Guided self-scheduling: each claim takes a share of what is left (never below pool.chunk),
 * so the last claims are small and no thread idles long at the join. */
static void drain(void) {
  const int64_t n = pool.n, parts = 2 * (int64_t)moe_get_threads();
  int64_t b = atomic_load_explicit(&pool.next, memory_order_relaxed);
  for (;;) {
    if (b >= n) return;
    int64_t size = (n - b + parts - 1) / parts;
    if (size < pool.chunk) size = pool.chunk;
    if (!atomic_compare_exchange_weak_explicit(&pool.next, &b, b + size, memory_order_relaxed, memory_order_relaxed))
      continue; /* b now holds the current value */
    pool.fn(pool.ctx, b, b + size < n ? b + size : n);
    b = atomic_load_explicit(&pool.next, memory_order_relaxed);
  }
}

static void *worker(void *arg) {
  int index = (int)(intptr_t)arg; /* helper i is thread i+1; the caller is thread 0 */
  uint64_t seen = 0;
  in_worker = 1;
  for (;;) {
    uint64_t gen = atomic_load_explicit(&pool.generation, memory_order_acquire);
    if (gen == seen) {
      uint64_t t0 = now_ns();
      for (int i = 0; gen == seen; i++) {
        if (index == 0) moe_hint_drain(&pool.generation, seen); /* idle: prefetch upcoming weights */
        cpu_relax();
        gen = atomic_load_explicit(&pool.generation, memory_order_acquire);
        if ((i & 255) == 255 && now_ns() - t0 > SPIN_NS) break;
      }
      if (gen == seen) {
        pthread_mutex_lock(&pool.mu);
        atomic_fetch_add(&pool.sleeping, 1);
        while ((gen = atomic_load(&pool.generation)) == seen) pthread_cond_wait(&pool.wake, &pool.mu);
        atomic_fetch_sub(&pool.sleeping, 1);
        pthread_mutex_unlock(&pool.mu);
      }
    }
    seen = gen;
    if (index >= pool.active) continue;
    /* Join (busy++) then check the job is still open: with seq_cst on both sides either the
     * caller sees us busy and waits, or we see it closed and stay out. */
    atomic_fetch_add(&pool.busy, 1);
    if (atomic_load(&pool.closed) != gen && atomic_load(&pool.generation) == gen) drain();
    atomic_fetch_sub_explicit(&pool.busy, 1, memory_order_release);
  }
  return NULL;
}

int moe_set_threads(int32_t n) {
  if (n <= 0) n = (int32_t)sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1) n = 1;
  if (n > MAX_THREADS) n = MAX_THREADS;
  pthread_mutex_lock(&call_mu);
  while (pool.started < n - 1) {
    pthread_t th;
    if (pthread_create(&th, NULL, worker, (void *)(intptr_t)pool.started) != 0) break;
    pthread_detach(th);
    pool.started++;
  }
  pool.n_threads = pool.started + 1 < n ? pool.started + 1 : n;
  pthread_mutex_unlock(&call_mu);
  return MOE_OK;
}

int moe_get_threads(void) { return pool.n_threads > 0 ? pool.n_threads : 1; }

void moe_parallel_for(int64_t n, int64_t min_chunk, moe_range_fn fn, void *ctx) {
  if (n <= 0) return;
  int threads = moe_get_threads();
  if (min_chunk < 1) min_chunk = 1;
  if (threads <= 1 || n < 2 * min_chunk || in_worker) { fn(ctx, 0, n); return; }
  /* The smallest claim is the caller's min_chunk: guided claims shrink toward it, so it bounds
   * how long one thread can wait for another at the join (a larger floor, say n/32, left one
   * thread streaming the last ~2 MB of lm_head alone). Calls from several JS threads (actors
   * in Bun Workers share this library) take turns on the pool. */
  const int64_t chunk = min_chunk;
  pthread_mutex_lock(&call_mu);
  pool.fn = fn; pool.ctx = ctx; pool.n = n; pool.chunk = chunk;
  pool.active = threads - 1;
  atomic_store_explicit(&pool.next, 0, memory_order_relaxed);
  atomic_fetch_add(&pool.generation, 1); /* seq_cst: pairs with the sleeping count */
  if (atomic_load(&pool.sleeping) > 0) {
    pthread_mutex_lock(&pool.mu);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.mu);
  }
  in_worker = 1;
  drain();
  in_worker = 0;
  atomic_store(&pool.closed, atomic_load(&pool.generation));
  while (atomic_load_explicit(&pool.busy, memory_order_acquire) > 0) cpu_relax();
  pthread_mutex_unlock(&call_mu);
}
