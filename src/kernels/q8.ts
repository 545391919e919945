// Approximate int8 GEMV for speculative drafts (kernels/cpu/q8.c): the MTP head's draft logits
// only need the right argmax almost always, since the main model verifies every draft exactly.
// The weight is quantized once (int8, one f32 scale per row), activations per call; several times
// faster than the exact BF16 moe_linear. CPU-only and outside the kernel ABI, so it opens the
// CPU library itself instead of going through ffi.ts's SYMBOLS.
import { dlopen, FFIType, ptr } from "bun:ffi";
import { existsSync } from "node:fs";
import { type Weight, WDTYPE } from "../checkpoint/checkpoint.ts";
import { libraryPath } from "./ffi.ts";
import { KernelError } from "./kernels.ts";

const p = FFIType.ptr, i32 = FFIType.i32, i64 = FFIType.i64_fast;

export const Q8_SYMBOLS = {
  moe_last_error: { args: [], returns: FFIType.cstring },
  moe_cpu_q8_quantize: { args: [p, p, p, p, p, i32, i64, i64], returns: i32 },
  moe_cpu_q8_linear: { args: [p, p, p, p, p, i64, i64, i64], returns: i32 },
} as const;

function open() {
  const path = libraryPath("cpu");
  if (!existsSync(path)) throw new Error(`kernel library ${path} is missing: run \`npm run build:kernels\``);
  return dlopen(path, Q8_SYMBOLS).symbols;
}
let lib: ReturnType<typeof open> | null = null;
const sym = () => (lib ??= open());

function check(name: string, st: number): void {
  if (st !== 0) throw new KernelError(name, st, String(sym().moe_last_error()));
}

/** n bytes at a 64-byte boundary: rows of a 64-multiple K then start on cache lines (unaligned
 * 64-byte loads split lines; ~15% slower on cache-resident weights). */
function aligned(n: number): Int8Array {
  const raw = new Int8Array(n + 64);
  const skip = (64 - (ptr(raw) % 64)) % 64;
  return raw.subarray(skip, skip + n);
}

/** A [N, K] weight quantized to int8 rows: q[n, k] * scale[n] ~ W[n, k]. */
export class Q8Matrix {
  private constructor(
    readonly N: number,
    readonly K: number,
    readonly q: Int8Array, // [N * K]
    readonly scale: Float32Array, // [N], absmax / 127 (0 for an all-zero row)
    readonly rowsum: Int32Array, // [N], sum of each q row (the VNNI path's offset correction)
  ) {}

  /** Quantizes a stored F32 / BF16 / F8 E4M3 (block-scaled) matrix; rejects Inf/NaN weights. */
  static quantize(w: Weight): Q8Matrix {
    if (w.shape.length !== 2) throw new Error(`Q8Matrix: ${w.name} has shape [${w.shape}], expected a matrix`);
    const [N, K] = w.shape;
    const es = w.dtype === WDTYPE.F32 ? 4 : w.dtype === WDTYPE.BF16 ? 2 : 1;
    if (w.data.byteLength < N * K * es) throw new Error(`Q8Matrix: ${w.name} holds ${w.data.byteLength} bytes, expected ${N * K * es}`);
    if (w.scale && w.scale.length < Math.ceil(N / 128) * Math.ceil(K / 128))
      throw new Error(`Q8Matrix: ${w.name} has ${w.scale.length} block scales, expected ${Math.ceil(N / 128) * Math.ceil(K / 128)}`);
    const m = new Q8Matrix(N, K, aligned(N * K), new Float32Array(N), new Int32Array(N));
    check("moe_cpu_q8_quantize", sym().moe_cpu_q8_quantize(m.q, m.scale, m.rowsum, w.data, w.scale, w.dtype, N, K));
    return m;
  }

  /** out[t * N + n] ~ x[t * K ..] . W[n, :] for t < T (approximate: for drafts, not for verification). */
  linear(out: Float32Array, x: Float32Array, T: number): void {
    if (!Number.isInteger(T) || T < 0) throw new Error(`Q8Matrix.linear: bad token count ${T}`);
    if (x.length < T * this.K) throw new Error(`Q8Matrix.linear: x holds ${x.length} floats, expected ${T} x ${this.K}`);
    if (out.length < T * this.N) throw new Error(`Q8Matrix.linear: out holds ${out.length} floats, expected ${T} x ${this.N}`);
    if (T === 0) return;
    check("moe_cpu_q8_linear", sym().moe_cpu_q8_linear(out, x, this.q, this.scale, this.rowsum, T, this.N, this.K));
  }
}
