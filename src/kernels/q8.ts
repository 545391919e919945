// Approximate int8 GEMV for speculative drafts (kernels/cpu/q8.c): the MTP head's draft logits
// only need the right argmax almost always, since the main model verifies every draft exactly.
// The weight is quantized once (int8, one f32 scale per row), activations per call; several times
// faster than the exact BF16 moe_linear. Q8Experts runs grouped SwiGLU experts the same way
// (kernels/cpu/q8_experts.c; drafts use it for the MTP block's shared experts), as one grouped
// call like Kernels.experts. CPU-only and outside the kernel ABI, so it opens the CPU library
// itself instead of going through ffi.ts's SYMBOLS.
import { dlopen, FFIType, ptr } from "bun:ffi";
import { existsSync } from "node:fs";
import { type Weight, WDTYPE } from "../checkpoint/checkpoint.ts";
import { libraryPath } from "./ffi.ts";
import { type ExpertGroups, type ExpertWeights, KernelError } from "./kernels.ts";

const p = FFIType.ptr, i32 = FFIType.i32, i64 = FFIType.i64_fast;

export const Q8_SYMBOLS = {
  moe_last_error: { args: [], returns: FFIType.cstring },
  moe_cpu_q8_quantize: { args: [p, p, p, p, p, i32, i64, i64], returns: i32 },
  moe_cpu_q8_linear: { args: [p, p, p, p, p, i64, i64, i64], returns: i32 },
  moe_cpu_q8_experts: { args: [p, i64, p, i64, p, p, p, p, p, p, p, p, p, p, p, p, i64, i64, i64], returns: i32 },
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

/** A layer's experts as int8 copies, for drafts: forward() is Kernels.experts, out[tok]
 * += rw * W2 (silu(W1 x) * W3 x) over the groups' rows, approximately (int8 weights and
 * activations). Each expert's three matrices are quantized on its first rows. */
export class Q8Experts {
  private readonly ready: Uint8Array; // [E] 1 once quantized
  private readonly mats: (readonly [Q8Matrix, Q8Matrix, Q8Matrix] | undefined)[] = [];
  // q1 s1 r1 q3 s3 r3 q2 s2 r2: a pointer per expert (0 until quantized) into `mats`' arrays.
  private readonly tables: BigUint64Array[];
  private dims: readonly [number, number] | null = null; // [D, I] of the quantized experts

  constructor(readonly experts: readonly (ExpertWeights | null)[]) {
    this.ready = new Uint8Array(experts.length);
    this.tables = Array.from({ length: 9 }, () => new BigUint64Array(Math.max(experts.length, 1)));
  }

  private quantize(e: number, D: number, I: number): void {
    const w = this.experts[e];
    if (!w) throw new Error(`Q8Experts: expert ${e} has rows but no weights`);
    const want = (x: Weight, rows: number, cols: number) => {
      if (x.shape.length !== 2 || x.shape[0] !== rows || x.shape[1] !== cols)
        throw new Error(`Q8Experts: expert ${e}'s ${x.name} has shape [${x.shape}], expected [${rows}, ${cols}]`);
      return Q8Matrix.quantize(x);
    };
    const m = [want(w.w1, I, D), want(w.w3, I, D), want(w.w2, D, I)] as const;
    this.mats[e] = m; // keeps the arrays the tables point into alive
    m.forEach((q, i) => {
      this.tables[3 * i][e] = BigInt(ptr(q.q));
      this.tables[3 * i + 1][e] = BigInt(ptr(q.scale));
      this.tables[3 * i + 2][e] = BigInt(ptr(q.rowsum));
    });
    this.ready[e] = 1;
    this.dims = [D, I];
  }

  /** out[T, D] += the experts' outputs for x[T, D]; groups as for Kernels.experts (offsets [E+1],
   * rows: token indices below T, rw: routing weights). */
  forward(out: Float32Array, x: Float32Array, groups: ExpertGroups, T: number, D: number, I: number): void {
    const E = this.experts.length, { offsets, rows, rw } = groups;
    if (!Number.isInteger(T) || T < 0) throw new Error(`Q8Experts.forward: bad token count ${T}`);
    if (this.dims && (this.dims[0] !== D || this.dims[1] !== I))
      throw new Error(`Q8Experts.forward: D ${D}, I ${I}, but the experts are [${this.dims}]`);
    if (offsets.length !== E + 1) throw new Error(`Q8Experts.forward: ${offsets.length} offsets for ${E} experts`);
    const total = offsets[E];
    if (total === 0) return;
    if (rows.length < total || rw.length < total) throw new Error(`Q8Experts.forward: ${total} rows, but rows holds ${rows.length} and rw ${rw.length}`);
    if (x.length < T * D) throw new Error(`Q8Experts.forward: x holds ${x.length} floats, expected ${T} x ${D}`);
    if (out.length < T * D) throw new Error(`Q8Experts.forward: out holds ${out.length} floats, expected ${T} x ${D}`);
    for (let r = 0; r < total; r++)
      if (!(rows[r] >= 0 && rows[r] < T)) throw new Error(`Q8Experts.forward: row ${r} has token ${rows[r]}, expected below ${T}`);
    for (let e = 0; e < E; e++) if (!this.ready[e] && offsets[e + 1] > offsets[e]) this.quantize(e, D, I);
    const t = this.tables;
    check("moe_cpu_q8_experts", sym().moe_cpu_q8_experts(out, D, x, D, offsets, rows, rw,
      t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], E, D, I));
  }
}
