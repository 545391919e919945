/* The CPU worker threads. A persistent pool: threads park on a condition variable between
 * calls so that a decode step does not pay thread start-up per kernel. */
#include <pthread.h>
#include <unistd.h>
#include "common.h"

#define MAX_THREADS 64

static pthread_mutex_t call_mu = PTHREAD_MUTEX_INITIALIZER;

static struct {
  pthread_mutex_t mu;
  pthread_cond_t wake, done;
  pthread_t threads[MAX_THREADS];
  int n_threads;      /* including the caller */
  int started;        /* spawned helper threads */
  uint64_t generation;
  int pending;
  moe_range_fn fn;
  void *ctx;
  int64_t n, chunk;
  int64_t next;       /* next chunk start, taken under mu */
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

static int take(int64_t *b, int64_t *e) {
  if (pool.next >= pool.n) return 0;
  *b = pool.next;
  *e = pool.next + pool.chunk < pool.n ? pool.next + pool.chunk : pool.n;
  pool.next = *e;
  return 1;
}

static void drain(void) {
  int64_t b, e;
  for (;;) {
    pthread_mutex_lock(&pool.mu);
    int ok = take(&b, &e);
    pthread_mutex_unlock(&pool.mu);
    if (!ok) return;
    pool.fn(pool.ctx, b, e);
  }
}

static void *worker(void *arg) {
  int index = (int)(intptr_t)arg; /* helper i is thread i+1; the caller is thread 0 */
  uint64_t seen = 0;
  for (;;) {
    pthread_mutex_lock(&pool.mu);
    while (pool.generation == seen) pthread_cond_wait(&pool.wake, &pool.mu);
    seen = pool.generation;
    int active = index + 1 < pool.n_threads;
    pthread_mutex_unlock(&pool.mu);
    if (active) drain();
    pthread_mutex_lock(&pool.mu);
    if (--pool.pending == 0) pthread_cond_signal(&pool.done);
    pthread_mutex_unlock(&pool.mu);
  }
  return NULL;
}

int moe_set_threads(int32_t n) {
  if (n <= 0) n = (int32_t)sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1) n = 1;
  if (n > MAX_THREADS) n = MAX_THREADS;
  pthread_mutex_lock(&pool.mu);
  while (pool.started < n - 1) {
    if (pthread_create(&pool.threads[pool.started], NULL, worker, (void *)(intptr_t)pool.started) != 0) break;
    pthread_detach(pool.threads[pool.started]);
    pool.started++;
  }
  pool.n_threads = pool.started + 1 < n ? pool.started + 1 : n;
  pthread_mutex_unlock(&pool.mu);
  return MOE_OK;
}

int moe_get_threads(void) { return pool.n_threads > 0 ? pool.n_threads : 1; }

void moe_parallel_for(int64_t n, int64_t min_chunk, moe_range_fn fn, void *ctx) {
  if (n <= 0) return;
  int threads = moe_get_threads();
  if (min_chunk < 1) min_chunk = 1;
  if (threads <= 1 || n < 2 * min_chunk) { fn(ctx, 0, n); return; }
  /* Chunks small enough to balance, no smaller than min_chunk. Calls from several JS threads
   * (actors in Bun Workers share this library) take turns on the pool. */
  int64_t chunk = (n + threads * 4 - 1) / (threads * 4);
  if (chunk < min_chunk) chunk = min_chunk;
  pthread_mutex_lock(&call_mu);
  pthread_mutex_lock(&pool.mu);
  pool.fn = fn; pool.ctx = ctx; pool.n = n; pool.chunk = chunk; pool.next = 0;
  pool.pending = pool.started;
  pool.generation++;
  pthread_cond_broadcast(&pool.wake);
  pthread_mutex_unlock(&pool.mu);
  drain();
  pthread_mutex_lock(&pool.mu);
  while (pool.pending > 0) pthread_cond_wait(&pool.done, &pool.mu);
  pthread_mutex_unlock(&pool.mu);
  pthread_mutex_unlock(&call_mu);
}
