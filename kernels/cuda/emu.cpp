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
thread_local dim3 thread_idx, block_idx, block_dim, grid_dim;

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
  uint64_t xchg[1024];
};
static thread_local Sched S;
static thread_local gpuError_t last_error = gpuSuccess;

void fail(const char *what) {
  fprintf(stderr, "moe emulator: %s (block %u,%u,%u thread %u,%u,%u)\n", what, block_idx.x, block_idx.y,
          block_idx.z, thread_idx.x, thread_idx.y, thread_idx.z);
  abort();
}

static void set_thread(int i) {
  thread_idx = dim3(i % block_dim.x, (i / block_dim.x) % block_dim.y, i / (block_dim.x * block_dim.y));
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
  S.f[me].state = s;
  to_main(me);
  set_thread(me);
}
void sync_block() { park(AT_BLOCK); }
void sync_warp() { park(AT_WARP); }

uint64_t xchg_xor(uint64_t v, int mask) {
  int me = S.cur, src = (me & ~31) | ((me & 31) ^ mask);
  S.xchg[me] = v;
  sync_warp();
  uint64_t r = src < S.n ? S.xchg[src] : v;
  sync_warp(); /* nobody overwrites a slot before every lane has read it */
  return r;
}

unsigned char *dyn_smem() { return S.smem.data(); }

static void entry() {
  S.tramp(S.ctx);
  S.f[S.cur].state = DONE;
#ifdef FAST_SWITCH
  to_main(S.cur); /* never resumed */
  abort();
#endif
} /* with ucontext, returns to S.main through uc_link */

/* Releases the block barrier or one warp's barrier; false when nothing can move. */
static bool release() {
  int live = 0, at_block = 0;
  for (auto &f : S.f) {
    live += f.state != DONE;
    at_block += f.state == AT_BLOCK;
  }
  if (live == 0) return false;
  if (at_block == live) {
    for (auto &f : S.f) if (f.state == AT_BLOCK) f.state = RUN;
    return true;
  }
  bool any = false;
  for (int w = 0; w * 32 < S.n; w++) {
    int lo = w * 32, hi = std::min(S.n, lo + 32), wait = 0, alive = 0;
    for (int i = lo; i < hi; i++) {
      alive += S.f[i].state != DONE;
      wait += S.f[i].state == AT_WARP;
    }
    if (alive > 0 && wait == alive) {
      for (int i = lo; i < hi; i++) if (S.f[i].state == AT_WARP) S.f[i].state = RUN;
      any = true;
    }
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
  }
  for (;;) {
    for (int i = 0; i < S.n; i++) {
      if (S.f[i].state != RUN) continue;
      S.cur = i;
      set_thread(i);
      to_fiber(i);
    }
    bool done = true;
    for (auto &f : S.f) done = done && f.state == DONE;
    if (done) return;
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
