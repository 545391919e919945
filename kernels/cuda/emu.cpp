/* The emulator's scheduler and host runtime (see emu.h). Fibers are coroutines with their own
 * stacks; the scheduler runs every runnable fiber of a block until it parks at a barrier, then
 * releases whichever barrier every live participant has reached, and reports a deadlock
 * otherwise. On x86-64 a fiber switch is six register pushes and a stack swap (ucontext
 * elsewhere, ~30x slower: it makes a syscall per switch). */
#include "emu.h"
#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <ucontext.h>
#include <mutex>
#include <vector>

#if defined(__x86_64__)
/* emu_switch(&save_sp, to_sp): pushes the callee-saved registers, parks the stack pointer in
 * *save_sp, and resumes the stack to_sp (which was parked the same way). */
extern "C" void emu_switch(void **save_sp, void *to_sp);
asm(".text\n.globl emu_switch\n.hidden emu_switch\n.type emu_switch,@function\nemu_switch:\n"
    "pushq %rbp\npushq %rbx\npushq %r12\npushq %r13\npushq %r14\npushq %r15\n"
    "movq %rsp, (%rdi)\nmovq %rsi, %rsp\n"
    "popq %r15\npopq %r14\npopq %r13\npopq %r12\npopq %rbx\npopq %rbp\nret\n"
    ".size emu_switch, .-emu_switch\n");
#define FAST_SWITCH 1
#endif

namespace emu {
EMU_HIDDEN dim3 thread_idx, block_idx, block_dim, grid_dim;

enum State { RUN, AT_BLOCK, AT_WARP, DONE };
struct Fiber {
#ifdef FAST_SWITCH
  void *sp;
#else
  ucontext_t ctx;
#endif
  State state;
};
static const size_t STACK = 256 * 1024;
static const size_t MAX_DYN_SMEM = 48 * 1024; /* what a launch may use without an opt-in */

struct Sched {
#ifdef FAST_SWITCH
  void *main_sp;
#else
  ucontext_t main;
#endif
  std::vector<Fiber> f;
  std::vector<char *> stacks;
  int cur = 0, n = 0;
  void (*tramp)(void *) = nullptr;
  void *ctx = nullptr;
  std::vector<unsigned char> smem;
  uint64_t xchg[2][1024];
  unsigned mma_seq[1024]; /* mma calls of each fiber since it last parked */
  dim3 tidx[1024];
  int n_done, n_block, warp_wait[32], warp_live[32]; /* barrier bookkeeping */
  struct Mma { uint16_t a[256], b[256]; float c[256], d[256]; };
  std::vector<Mma> mma_log[32]; /* per warp, written by lane 0 */
  unsigned char parity[1024];
};
static Sched S;
static std::mutex launch_lock; /* one grid at a time: S and __shared__ are process-wide */
static thread_local gpuError_t last_error = gpuSuccess;

void fail(const char *what) {
  fprintf(stderr, "moe emulator: %s (block %u,%u,%u thread %u,%u,%u)\n", what, block_idx.x, block_idx.y,
          block_idx.z, thread_idx.x, thread_idx.y, thread_idx.z);
  abort();
}


static void to_main(int me) {
#ifdef FAST_SWITCH
  emu_switch(&S.f[me].sp, S.main_sp);
#else
  swapcontext(&S.f[me].ctx, &S.main);
#endif
}

static void to_fiber(int i) {
#ifdef FAST_SWITCH
  emu_switch(&S.main_sp, S.f[i].sp);
#else
  swapcontext(&S.main, &S.f[i].ctx);
#endif
}

static void park(State s) {
  int me = S.cur;
  S.mma_seq[me] = 0;
  S.f[me].state = s;
  if (s == AT_BLOCK) S.n_block++;
  else S.warp_wait[me >> 5]++;
  to_main(me);
  thread_idx = S.tidx[me];
}
void sync_block() { park(AT_BLOCK); }
void sync_warp() { park(AT_WARP); }

/* Two exchange slots per lane, used alternately: one barrier per shuffle suffices, since no lane
 * can write a slot again before every lane has passed the next shuffle's barrier. */
uint64_t xchg_xor(uint64_t v, int mask) {
  int me = S.cur, src = (me & ~31) | ((me & 31) ^ mask), k = S.parity[me] ^= 1;
  S.xchg[k][me] = v;
  sync_warp();
  return src < S.n ? S.xchg[k][src] : v;
}

unsigned char *dyn_smem() { return S.smem.data(); }

bool mma_replay(const void *a, const void *b, const float *c, float *d) {
  int me = S.cur, w = me >> 5;
  unsigned k = S.mma_seq[me]++;
  if ((me & 31) == 0) {
    if (k == 0) S.mma_log[w].clear();
    return false;
  }
  if (k >= S.mma_log[w].size()) return false;
  const Sched::Mma &e = S.mma_log[w][k];
  if (memcmp(e.a, a, sizeof e.a) || memcmp(e.b, b, sizeof e.b) || memcmp(e.c, c, sizeof e.c)) return false;
  memcpy(d, e.d, sizeof e.d);
  return true;
}

void mma_record(const void *a, const void *b, const float *c, const float *d) {
  int me = S.cur;
  if (me & 31) return;
  Sched::Mma e;
  memcpy(e.a, a, sizeof e.a), memcpy(e.b, b, sizeof e.b), memcpy(e.c, c, sizeof e.c), memcpy(e.d, d, sizeof e.d);
  S.mma_log[me >> 5].push_back(e);
}

static void entry() {
  S.tramp(S.ctx);
  S.f[S.cur].state = DONE;
  S.n_done++;
  S.warp_live[S.cur >> 5]--;
#ifdef FAST_SWITCH
  to_main(S.cur); /* never resumed */
  abort();
#endif
} /* with ucontext, returns to S.main through uc_link */

/* Releases the block barrier, or every warp whose live lanes all wait at a warp barrier;
 * false when nothing can move. */
static bool release() {
  if (S.n_block > 0 && S.n_block == S.n - S.n_done) {
    for (int i = 0; i < S.n; i++) if (S.f[i].state == AT_BLOCK) S.f[i].state = RUN;
    S.n_block = 0;
    return true;
  }
  bool any = false;
  for (int w = 0; w * 32 < S.n; w++) {
    if (S.warp_wait[w] == 0 || S.warp_wait[w] != S.warp_live[w]) continue;
    for (int i = w * 32; i < std::min(S.n, w * 32 + 32); i++) if (S.f[i].state == AT_WARP) S.f[i].state = RUN;
    S.warp_wait[w] = 0;
    any = true;
  }
  return any;
}

static void run_block() {
  for (int i = 0; i < S.n; i++) {
    Fiber &f = S.f[i];
#ifdef FAST_SWITCH
    /* A parked frame: six saved registers, then entry() as the return address, with the
     * stack aligned as right after a call. */
    uintptr_t top = ((uintptr_t)(S.stacks[i] + STACK) & ~(uintptr_t)15) - 8;
    void **sp = (void **)top;
    *--sp = (void *)entry;
    for (int r = 0; r < 6; r++) *--sp = nullptr;
    f.sp = sp;
#else
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = S.stacks[i];
    f.ctx.uc_stack.ss_size = STACK;
    f.ctx.uc_link = &S.main;
    makecontext(&f.ctx, entry, 0);
#endif
    f.state = RUN;
    S.parity[i] = 0;
    S.mma_seq[i] = 0;
    S.tidx[i] = dim3(i % block_dim.x, (i / block_dim.x) % block_dim.y, i / (block_dim.x * block_dim.y));
  }
  S.n_done = S.n_block = 0;
  for (int w = 0; w * 32 < S.n; w++) S.warp_wait[w] = 0, S.warp_live[w] = std::min(32, S.n - w * 32);
  for (;;) {
    for (int i = 0; i < S.n; i++) {
      if (S.f[i].state != RUN) continue;
      S.cur = i;
      thread_idx = S.tidx[i];
      to_fiber(i);
    }
    if (S.n_done == S.n) return;
    if (!release()) fail("deadlock: threads wait at different barriers (divergent __syncthreads or shuffle)");
  }
}

void launch(dim3 g, dim3 b, size_t smem, void (*tramp)(void *), void *ctx) {
  unsigned n = b.x * b.y * b.z;
  if (n == 0 || n > 1024 || g.x == 0 || g.y == 0 || g.z == 0 || g.y > 65535 || g.z > 65535) {
    last_error = gpuErrorInvalidConfiguration;
    return;
  }
  if (smem > MAX_DYN_SMEM) {
    last_error = gpuErrorInvalidValue;
    return;
  }
  std::lock_guard<std::mutex> hold(launch_lock);
  S.n = (int)n;
  S.f.resize(n);
  while (S.stacks.size() < n) S.stacks.push_back((char *)malloc(STACK));
  S.smem.assign(smem > 0 ? smem : 16, 0xcd); /* garbage, like real shared memory */
  S.tramp = tramp;
  S.ctx = ctx;
  dim3 sg = grid_dim, sb = block_dim, sbi = block_idx, sti = thread_idx;
  grid_dim = g;
  block_dim = b;
  for (unsigned z = 0; z < g.z; z++)
    for (unsigned y = 0; y < g.y; y++)
      for (unsigned x = 0; x < g.x; x++) {
        block_idx = dim3(x, y, z);
        run_block();
      }
  grid_dim = sg, block_dim = sb, block_idx = sbi, thread_idx = sti;
}
} // namespace emu

/* ---- host runtime: one device, host memory, synchronous copies ---- */
const char *gpuGetErrorString(gpuError_t e) {
  switch (e) {
    case gpuSuccess: return "no error";
    case gpuErrorInvalidValue: return "invalid argument";
    case gpuErrorMemoryAllocation: return "out of memory";
    case gpuErrorInvalidConfiguration: return "invalid configuration argument";
    case gpuErrorInvalidDevice: return "invalid device ordinal";
    default: return "unknown error";
  }
}
gpuError_t gpuGetLastError() {
  gpuError_t e = emu::last_error;
  emu::last_error = gpuSuccess;
  return e;
}
gpuError_t gpuGetDeviceCount(int *n) { *n = 1; return gpuSuccess; }
gpuError_t gpuSetDevice(int d) { return d == 0 ? gpuSuccess : gpuErrorInvalidDevice; }
gpuError_t gpuGetDevice(int *d) { *d = 0; return gpuSuccess; }
gpuError_t gpuMalloc(void **p, size_t n) {
  *p = aligned_alloc(256, n == 0 ? 256 : (n + 255) / 256 * 256);
  return *p ? gpuSuccess : gpuErrorMemoryAllocation;
}
gpuError_t gpuFree(void *p) { free(p); return gpuSuccess; }
gpuError_t gpuMemcpyAsync(void *dst, const void *src, size_t n, int, gpuStream_t) {
  if (n) memmove(dst, src, n);
  return gpuSuccess;
}
gpuError_t gpuStreamCreate(gpuStream_t *s) { *s = new char; return gpuSuccess; }
gpuError_t gpuStreamDestroy(gpuStream_t s) { delete (char *)s; return gpuSuccess; }
