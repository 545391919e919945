// Where tensor bytes live. Decode streams every active weight once per token, and with 4 KiB
// pages that stream costs a TLB miss (and a page walk) every 4 KiB: on the 2-core bench machine
// weights in 2 MiB transparent huge pages decode bench-m BF16 about 6% faster than the same
// weights mapped from the file. So by default, where the kernel offers THP (Linux, mode
// "always" or "madvise"), tensors are read into anonymous arenas advised MADV_HUGEPAGE, packed
// in the order the model asks for them (an expert's gate, up and down matrices end up adjacent).
// Only the tensors a process asks for are read (an expert actor reads its own experts only).
// Where THP is not offered, tensors are read into ordinary memory. Shards are never mapped: a
// shard truncated or rewritten under a running server would fault (SIGBUS) on the next touch of
// a mapped page and kill the whole process, gateway included; a read fails as an error instead.
import { dlopen, FFIType, ptr } from "bun:ffi";
import { readFileSync } from "node:fs";

const HUGE = 2 << 20; // bytes in a huge page
const CHUNK = 64 << 20; // one arena allocation; larger tensors get their own
const ALIGN = 64;
const MADV_HUGEPAGE = 14;

export type WeightMemory = "hugepages" | "plain";

let madvise: ((addr: number, len: number) => boolean) | null | undefined;

/** madvise(MADV_HUGEPAGE) through libc, or null where that is not available. */
function adviser(): ((addr: number, len: number) => boolean) | null {
  if (madvise !== undefined) return madvise;
  madvise = null;
  try {
    if (process.platform !== "linux") return null;
    const mode = readFileSync("/sys/kernel/mm/transparent_hugepage/enabled", "utf8");
    if (mode.includes("[never]")) return null;
    const libc = dlopen("libc.so.6", { madvise: { args: [FFIType.u64, FFIType.u64, FFIType.i32], returns: FFIType.i32 } });
    madvise = (addr, len) => libc.symbols.madvise(BigInt(addr), BigInt(len), MADV_HUGEPAGE) === 0;
  } catch {
    madvise = null;
  }
  return madvise;
}

/** How this process holds weights: in huge-page arenas where THP is offered, else in plain
 * memory. MOE_WEIGHTS may say "hugepages" (the default); "mmap" is refused, see the top. */
export function weightMemory(): WeightMemory {
  const want = process.env.MOE_WEIGHTS;
  if (want === "mmap")
    throw new Error("MOE_WEIGHTS=mmap is no longer offered: a shard truncated under a running server would kill it (SIGBUS). Unset MOE_WEIGHTS: weights are read into memory");
  if (want && want !== "hugepages") throw new Error(`MOE_WEIGHTS must be hugepages or unset, not ${want}`);
  return adviser() ? "hugepages" : "plain";
}

/** A fresh n-byte region starting on a huge-page boundary, advised MADV_HUGEPAGE before any
 * page of it is touched (a fresh typed array's pages are only mapped on first write). */
function hugeRegion(n: number): Uint8Array {
  const raw = new Uint8Array(n + HUGE);
  const at = ptr(raw), off = (HUGE - (at % HUGE)) % HUGE;
  const len = Math.ceil(n / HUGE) * HUGE;
  adviser()?.(at + off, Math.min(len, raw.byteLength - off));
  return raw.subarray(off, off + n);
}

let chunk: Uint8Array | null = null;
let used = 0;

/** n bytes for one tensor (64-byte aligned), in huge pages where THP is offered. */
export function arenaAlloc(n: number): Uint8Array {
  if (n > CHUNK / 4) return hugeRegion(n);
  const start = Math.ceil(used / ALIGN) * ALIGN;
  if (!chunk || start + n > chunk.byteLength) {
    chunk = hugeRegion(CHUNK);
    used = 0;
    return arenaAlloc(n);
  }
  used = start + n;
  return chunk.subarray(start, start + n);
}
