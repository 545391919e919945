// Shared pieces of the CPU kernel tests: the library with its CPU-only ISA switch, seeded random
// data, FP8 E4M3 / BF16 encodings, straightforward JS references and the tolerance check.
import { seededRandom } from "../../src/engine/sequence.ts";
import { dlopen, FFIType, ptr } from "bun:ffi";
import { afterAll } from "bun:test";
import { libraryPath, SYMBOLS } from "../../src/kernels/ffi.ts";

const lib = dlopen(libraryPath("cpu"), {
  ...SYMBOLS,
  moe_cpu_isa: { args: [], returns: FFIType.cstring },
  moe_cpu_set_isa: { args: [FFIType.ptr], returns: FFIType.i32 },
});
export const k = lib.symbols;

const initial = String(k.moe_cpu_isa());
const cstr = (s: string) => ptr(new TextEncoder().encode(`${s}\0`));
/** Every path this CPU and build can run; the first is the straightforward portable reference. */
export const ISAS = ["portable", "avx2", "avx512"].filter((n) => k.moe_cpu_set_isa(cstr(n)) === 0);
k.moe_cpu_set_isa(cstr(initial));
export function useIsa(name: string): void {
  if (k.moe_cpu_set_isa(cstr(name)) !== 0) throw new Error(`ISA ${name} unavailable`);
}
afterAll(() => useIsa(initial));

export function check(name: string, st: number): void {
  if (st !== 0) throw new Error(`${name} failed (${st}): ${k.moe_last_error()}`);
}

/** Deterministic uniform values in [-1, 1) (mulberry32). */
export function rng(seed: number): () => number {
  const u = seededRandom(seed);
  return () => 2 * u() - 1;
}
export function randF32(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed), out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = r() * scale;
  return out;
}

/** e4m3fn value of a code: bias 7, subnormals, 0x7f/0xff NaN (never generated here). */
export function e4m3(code: number): number {
  const s = code & 0x80 ? -1 : 1, e = (code >> 3) & 15, m = code & 7;
  return s * (e === 0 ? (m / 8) * 2 ** -6 : (1 + m / 8) * 2 ** (e - 7));
}
export const bf16 = (h: number) => new Float32Array(new Uint32Array([h << 16]).buffer)[0];

export type DType = 0 | 1 | 2; // MOE_F32, MOE_BF16, MOE_F8E4M3
export const DTYPES: DType[] = [0, 1, 2];

/** A stored [rows, cols] weight at byte offset `shift` inside its buffer (unaligned when odd). */
export interface TestWeight { dtype: DType; rows: number; cols: number; bytes: Uint8Array; scale: Float32Array | null; value(r: number, c: number): number }

export function randWeight(dtype: DType, rows: number, cols: number, seed: number, shift = 1): TestWeight {
  const r = rng(seed), es = dtype === 0 ? 4 : dtype === 1 ? 2 : 1;
  const buf = new Uint8Array(rows * cols * es + shift + 8), bytes = buf.subarray(shift, shift + rows * cols * es);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let scale: Float32Array | null = null;
  if (dtype === 0) for (let i = 0; i < rows * cols; i++) dv.setFloat32(4 * i, r(), true);
  else if (dtype === 1) for (let i = 0; i < rows * cols; i++) dv.setUint16(2 * i, new Uint32Array(new Float32Array([r()]).buffer)[0] >>> 16, true);
  else {
    for (let i = 0; i < rows * cols; i++) {
      let c = Math.floor((r() + 1) * 128) & 0xff;
      if ((c & 0x7f) === 0x7f) c ^= 1; // no NaN codes
      bytes[i] = c;
    }
    const nb = Math.ceil(cols / 128);
    scale = new Float32Array(Math.ceil(rows / 128) * nb);
    for (let i = 0; i < scale.length; i++) scale[i] = (r() + 1.5) / 256;
  }
  const value = (row: number, c: number) =>
    dtype === 0 ? dv.getFloat32(4 * (row * cols + c), true)
    : dtype === 1 ? bf16(dv.getUint16(2 * (row * cols + c), true))
    : e4m3(bytes[row * cols + c]) * scale![Math.floor(row / 128) * Math.ceil(cols / 128) + Math.floor(c / 128)];
  return { dtype, rows, cols, bytes, scale, value };
}

/** out[t, n] = sum_k x[t*ldx + k] * W[row0 + n, k], in float64. */
export function refLinear(x: Float32Array, ldx: number, w: TestWeight, row0: number, T: number, N: number, K: number): Float64Array {
  const out = new Float64Array(T * N);
  for (let n = 0; n < N; n++) {
    const row = Array.from({ length: K }, (_, c) => w.value(row0 + n, c));
    for (let t = 0; t < T; t++) {
      let s = 0;
      for (let c = 0; c < K; c++) s += x[t * ldx + c] * row[c];
      out[t * N + n] = s;
    }
  }
  return out;
}

/** |a - b| <= atol + rtol * |b| everywhere; reports the worst element. */
export function expectClose(a: ArrayLike<number>, b: ArrayLike<number>, atol: number, rtol: number, what: string): void {
  if (a.length !== b.length) throw new Error(`${what}: length ${a.length} vs ${b.length}`);
  let worst = -1, at = -1;
  for (let i = 0; i < a.length; i++) {
    const excess = Math.abs(a[i] - b[i]) - (atol + rtol * Math.abs(b[i]));
    if (!(excess <= 0) && (at < 0 || excess > worst || Number.isNaN(excess))) { worst = excess; at = i; }
  }
  if (at >= 0) throw new Error(`${what}: element ${at} is ${a[at]}, expected ${b[at]} (atol ${atol}, rtol ${rtol})`);
}
