// Q8Matrix (kernels/cpu/q8.c), the approximate int8 GEMV of the speculative draft head, on every
// ISA path. Accuracy against a float64 reference, two ways:
// - the rigorous quantization bound: with sw = absmax(w_n) / 127 and sx = absmax(x_t) / 127,
//   every quantized element is off by at most half a step, so
//   |out - ref| <= sw/2 sum|x| + sx/2 sum|w| + K sx sw / 4 (+ f32 rounding), for all data;
// - for K >= 100 and realistic weights, each logit within 1% of its scale sum_k |w_nk x_tk|:
//   the error is a sum of K independent rounding terms, one standard deviation ~0.75% / sqrt(K)
//   of that scale for uniform data (0.075% at K = 100; the worst of these ~10^4 logits measured
//   0.26%). Rows of uniformly random F8 codes (values spanning 2^17) only get the rigorous bound.
// The int32 dot products are exact on every path, so the paths must agree bit for bit.
import { dlopen } from "bun:ffi";
import { afterAll, describe, expect, test } from "bun:test";
import type { Weight } from "../../src/checkpoint/checkpoint.ts";
import { libraryPath } from "../../src/kernels/ffi.ts";
import { Q8_SYMBOLS, Q8Matrix } from "../../src/kernels/q8.ts";
import { e4m3, ISAS, k, randF32, randWeight, rng, type TestWeight, useIsa } from "./helpers.ts";

const raw = dlopen(libraryPath("cpu"), Q8_SYMBOLS).symbols;
const threadsBefore = k.moe_get_threads();
afterAll(() => k.moe_set_threads(threadsBefore));

/** A test weight as the checkpoint hands it out, with its exact values W [rows * cols]. */
interface Mat { w: Weight; W: Float64Array }
const fromTest = (t: TestWeight): Mat => {
  const W = new Float64Array(t.rows * t.cols);
  for (let r = 0; r < t.rows; r++) for (let c = 0; c < t.cols; c++) W[r * t.cols + c] = t.value(r, c);
  return { w: { name: "w", dtype: t.dtype, data: t.bytes, scale: t.scale, shape: [t.rows, t.cols] }, W };
};
/** BF16 of uniform [-1, 1) values, built in bulk (large matrices). */
function bf16Mat(rows: number, cols: number, seed: number): Mat {
  const f = randF32(rows * cols, seed), bits = new Uint32Array(f.buffer), h = new Uint16Array(rows * cols);
  for (let i = 0; i < h.length; i++) bits[i] = (h[i] = bits[i] >>> 16) << 16; // f now holds the bf16 values
  return { w: { name: "w", dtype: 1, data: new Uint8Array(h.buffer), scale: null, shape: [rows, cols] }, W: Float64Array.from(f) };
}
/** F8 E4M3 as checkpoints store it: each 128 x 128 block's values (uniform, a per-block
 * amplitude in [0.5, 1.5)) scaled so the block's largest maps to 448, rounded to the nearest
 * code. (randWeight's uniformly random codes span 2^17 within a row: adversarial for absmax.) */
const E4M3_POS = Array.from({ length: 127 }, (_, c) => e4m3(c)); // codes 0..126, ascending
function f8Mat(rows: number, cols: number, seed: number): Mat {
  const r = rng(seed), nb = Math.ceil(cols / 128), data = new Uint8Array(rows * cols), W = new Float64Array(rows * cols);
  const amp = Float64Array.from({ length: Math.ceil(rows / 128) * nb }, () => 1 + r() / 2);
  const scale = Float32Array.from(amp, (a) => a / 448);
  for (let i = 0; i < rows * cols; i++) {
    const b = Math.floor(i / cols / 128) * nb + Math.floor((i % cols) / 128), s = scale[b];
    const v = r() * amp[b], m = Math.abs(v) / s;
    let lo = 0, hi = 126; // E4M3_POS[lo] <= m < E4M3_POS[hi]
    while (hi - lo > 1) { const mid = (lo + hi) >> 1; if (E4M3_POS[mid] <= m) lo = mid; else hi = mid; }
    const code = E4M3_POS[hi] - m < m - E4M3_POS[lo] ? hi : lo;
    data[i] = code | (v < 0 ? 0x80 : 0);
    W[i] = (v < 0 ? -1 : 1) * E4M3_POS[code] * s;
  }
  return { w: { name: "w", dtype: 2, data, scale, shape: [rows, cols] }, W };
}
const absmax = (a: ArrayLike<number>, off: number, n: number) => {
  let m = 0;
  for (let i = 0; i < n; i++) m = Math.max(m, Math.abs(a[off + i]));
  return m;
};

/** Exact logits, the rigorous error bound and the |w|.|x| scale of each (t, n). */
function reference(W: Float64Array, x: Float32Array, T: number, N: number, K: number) {
  const ref = new Float64Array(T * N), bound = new Float64Array(T * N), scale = new Float64Array(T * N);
  for (let t = 0; t < T; t++) {
    const sx = absmax(x, t * K, K) / 127;
    let l1x = 0;
    for (let c = 0; c < K; c++) l1x += Math.abs(x[t * K + c]);
    for (let n = 0; n < N; n++) {
      const sw = absmax(W, n * K, K) / 127;
      let s = 0, l1w = 0, sc = 0;
      for (let c = 0; c < K; c++) {
        const w = W[n * K + c], xv = x[t * K + c];
        s += w * xv; l1w += Math.abs(w); sc += Math.abs(w * xv);
      }
      ref[t * N + n] = s;
      scale[t * N + n] = sc;
      bound[t * N + n] = (sw / 2) * l1x + (sx / 2) * l1w + (K * sx * sw) / 4 + 1e-6 * (sc + Math.abs(s)) + 1e-30;
    }
  }
  return { ref, bound, scale };
}

const argmax = (a: ArrayLike<number>, off: number, n: number) => {
  let best = 0;
  for (let i = 1; i < n; i++) if (a[off + i] > a[off + best]) best = i;
  return best;
};

// Weight data sets: [name, make(rows, cols, seed), whether the 1%-of-scale check applies].
const SETS: [string, (rows: number, cols: number, seed: number) => Mat, boolean][] = [
  ["F32", (r, c, s) => fromTest(randWeight(0, r, c, s)), true],
  ["BF16", (r, c, s) => fromTest(randWeight(1, r, c, s)), true],
  ["F8", f8Mat, true],
  ["F8 random codes", (r, c, s) => fromTest(randWeight(2, r, c, s)), false],
];

// One [4096 x 256] BF16 draft head (the small test model's shape) for the larger checks.
const head = bf16Mat(4096, 256, 77);
const headQ = Q8Matrix.quantize(head.w);

describe("Q8Matrix", () => {
  test("quantize: int8 rows within half a step, absmax scales, row sums", () => {
    for (const [name, make] of SETS)
      for (const K of [7, 100, 300]) {
        const { w, W } = make(133, K, 10 + K);
        const m = Q8Matrix.quantize(w);
        for (let n = 0; n < 133; n++) {
          const amax = absmax(W, n * K, K), s = m.scale[n];
          expect(s).toBe(Math.fround(Math.fround(amax) / 127));
          let sum = 0, full = false;
          for (let c = 0; c < K; c++) {
            const q = m.q[n * K + c];
            sum += q;
            full ||= Math.abs(q) === 127;
            const err = Math.abs(W[n * K + c] - q * s); // half a step, plus the f32 roundings
            if (!(err <= s / 2 + 1e-6 * Math.abs(W[n * K + c]))) throw new Error(`${name} K${K} (${n}, ${c}): ${q} * ${s} for ${W[n * K + c]}`);
          }
          expect(full).toBe(true);
          expect(m.rowsum[n]).toBe(sum);
        }
      }
  });

  test("close to the exact product: within the quantization bound, and 1% of |w|.|x| for K >= 100", () => {
    const N = 133; // 4-row tiles plus a 1-row remainder; straddles the 128-row F8 scale blocks
    for (const [name, make, typical] of SETS)
      for (const K of [256, 100, 7, 1000]) {
        const { w, W } = make(N, K, 100 + K);
        const m = Q8Matrix.quantize(w);
        for (const T of [1, 2, 3, 8]) {
          const x = randF32(T * K, 7 * K + T);
          const { ref, bound, scale } = reference(W, x, T, N, K);
          const out = new Float32Array(T * N).fill(NaN);
          m.linear(out, x, T);
          for (let i = 0; i < T * N; i++) {
            const err = Math.abs(out[i] - ref[i]);
            if (!(err <= bound[i])) throw new Error(`${name} K${K} T${T} logit ${i}: ${out[i]} vs ${ref[i]} (bound ${bound[i]})`);
            if (typical && K >= 100 && !(err <= 0.01 * scale[i])) throw new Error(`${name} K${K} T${T} logit ${i}: error ${err} over 1% of ${scale[i]}`);
          }
        }
      }
  });

  test("every ISA path gives bit-identical outputs", () => {
    // [N, K, T]: K below, at and past the 32/64-byte vectors, with tails; T past the 4-token
    // tiles and past 8; the [4096 x 256] head takes the threaded path.
    const cases: [number, number, number][] = [
      [133, 256, 1], [133, 256, 2], [133, 256, 3], [133, 256, 8], [37, 7, 5], [37, 100, 4],
      [37, 1000, 9], [64, 64, 13], [21, 65, 6], [4096, 256, 1], [4096, 256, 2], [4096, 256, 8],
    ];
    for (const [N, K, T] of cases) {
      const m = N === 4096 ? headQ : Q8Matrix.quantize(bf16Mat(N, K, N + K).w);
      const x = randF32(T * K, K + T);
      const runs = ISAS.map((isa) => {
        useIsa(isa);
        const out = new Float32Array(T * N);
        m.linear(out, x, T);
        return out;
      });
      for (let i = 1; i < runs.length; i++)
        expect(Buffer.from(runs[i].buffer).equals(Buffer.from(runs[0].buffer)), `${ISAS[i]} N${N} K${K} T${T}`).toBe(true);
    }
  });

  test("the argmax matches the exact one whenever the margin exceeds the error bound", () => {
    const V = 4096, K = 256, T = 16, W = head.W;
    // Half the tokens lean toward one vocabulary row (a confident draft), half are pure noise.
    const r = rng(78), x = randF32(T * K, 79);
    const planted: number[] = [];
    for (let t = 0; t < T / 2; t++) {
      const row = Math.floor(((r() + 1) / 2) * V);
      planted.push(row);
      for (let c = 0; c < K; c++) x[t * K + c] = 0.5 * x[t * K + c] + W[row * K + c];
    }
    const { ref, bound } = reference(W, x, T, V, K);
    const out = new Float32Array(T * V);
    headQ.linear(out, x, T);
    let checked = 0, agree = 0;
    for (let t = 0; t < T; t++) {
      const best = argmax(ref, t * V, V), got = argmax(out, t * V, V);
      if (t < T / 2) expect(best).toBe(planted[t]);
      if (got === best) agree++;
      // The order of two logits can only flip when their errors reach the margin.
      let second = -Infinity, maxBound = 0;
      for (let n = 0; n < V; n++) {
        if (n !== best) second = Math.max(second, ref[t * V + n]);
        maxBound = Math.max(maxBound, bound[t * V + n]);
      }
      if (ref[t * V + best] - second > 2 * maxBound) {
        checked++;
        expect(got).toBe(best);
      }
    }
    expect(checked).toBeGreaterThanOrEqual(T / 2); // every planted token has a clear margin
    expect(agree).toBeGreaterThanOrEqual(T - 1); // and noise tokens (small margins) agree too
  });

  test("an all-zero weight row and all-zero activations give exact zeros", () => {
    const N = 9, K = 100, T = 3;
    const tw = randWeight(0, N, K, 5, 0);
    tw.bytes.fill(0, 5 * K * 4, 6 * K * 4); // row 5
    const m = Q8Matrix.quantize(fromTest(tw).w);
    expect(m.scale[5]).toBe(0);
    expect(m.rowsum[5]).toBe(0);
    expect(m.scale[0]).toBeGreaterThan(0);
    const x = randF32(T * K, 6);
    x.fill(0, K, 2 * K); // token 1
    for (const isa of ISAS) {
      useIsa(isa);
      const out = new Float32Array(T * N).fill(NaN);
      m.linear(out, x, T);
      for (let t = 0; t < T; t++)
        for (let n = 0; n < N; n++) {
          const v = out[t * N + n];
          if (t === 1 || n === 5) expect(Object.is(v, 0) || Object.is(v, -0)).toBe(true);
          else expect(v !== 0 && Number.isFinite(v)).toBe(true);
        }
    }
  });

  test("Inf/NaN: a weight is rejected at quantization, an activation row gives NaN logits", () => {
    const tw = randWeight(0, 6, 20, 8, 0);
    new DataView(tw.bytes.buffer, tw.bytes.byteOffset).setFloat32((3 * 20 + 4) * 4, NaN, true);
    expect(() => Q8Matrix.quantize(fromTest(tw).w)).toThrow(/moe_cpu_q8_quantize: row 3 holds an Inf or NaN/);
    const m = Q8Matrix.quantize(fromTest(randWeight(0, 6, 20, 9)).w);
    const x = randF32(40, 10);
    x[25] = Infinity;
    for (const isa of ISAS) {
      useIsa(isa);
      const out = new Float32Array(12);
      m.linear(out, x, 2);
      for (let n = 0; n < 6; n++) {
        expect(Number.isFinite(out[n])).toBe(true);
        expect(Number.isNaN(out[6 + n])).toBe(true);
      }
    }
  });

  test("bad arguments give a clear error, never a crash", () => {
    const q = new Int8Array(16), s = new Float32Array(4), rs = new Int32Array(4), w = new Float32Array(16);
    const out = new Float32Array(4), x = new Float32Array(4);
    const fails = (st: number, msg: RegExp) => {
      expect(st).not.toBe(0);
      expect(String(raw.moe_last_error())).toMatch(msg);
    };
    fails(raw.moe_cpu_q8_quantize(q, s, rs, w, null, 0, 0, 4), /moe_cpu_q8_quantize: N must be > 0/);
    fails(raw.moe_cpu_q8_quantize(q, s, rs, w, null, 0, 4, 0), /moe_cpu_q8_quantize: K must be > 0/);
    fails(raw.moe_cpu_q8_quantize(q, s, rs, w, null, 0, 4, -3), /moe_cpu_q8_quantize: K must be > 0/);
    fails(raw.moe_cpu_q8_quantize(null, s, rs, w, null, 0, 4, 4), /moe_cpu_q8_quantize: q is NULL/);
    fails(raw.moe_cpu_q8_quantize(q, s, rs, null, null, 0, 4, 4), /moe_cpu_q8_quantize: w is NULL/);
    fails(raw.moe_cpu_q8_quantize(q, s, rs, w, null, 2, 4, 4), /F8E4M3 weight needs its scale/);
    fails(raw.moe_cpu_q8_quantize(q, s, rs, w, null, 7, 4, 4), /unknown weight dtype 7/);
    fails(raw.moe_cpu_q8_quantize(q, s, rs, w, null, 0, 1, 1 << 20), /K 1048576 exceeds 131072/);
    fails(raw.moe_cpu_q8_linear(out, x, q, s, rs, 1, 0, 4), /moe_cpu_q8_linear: N must be > 0/);
    fails(raw.moe_cpu_q8_linear(out, x, q, s, rs, 1, 4, 0), /moe_cpu_q8_linear: K must be > 0/);
    fails(raw.moe_cpu_q8_linear(out, x, q, s, rs, -1, 4, 4), /moe_cpu_q8_linear: T must be >= 0/);
    fails(raw.moe_cpu_q8_linear(out, null, q, s, rs, 1, 4, 4), /moe_cpu_q8_linear: x is NULL/);
    fails(raw.moe_cpu_q8_linear(null, x, q, s, rs, 1, 4, 4), /moe_cpu_q8_linear: out is NULL/);
    fails(raw.moe_cpu_q8_linear(out, x, null, s, rs, 1, 4, 4), /moe_cpu_q8_linear: q is NULL/);
    fails(raw.moe_cpu_q8_linear(out, x, q, s, null, 1, 4, 4), /moe_cpu_q8_linear: rowsum is NULL/);
    expect(raw.moe_cpu_q8_linear(out, x, q, s, rs, 0, 4, 4)).toBe(0); // T = 0: nothing to do
    // The TS side checks what C cannot see: shapes and buffer lengths.
    const vec: Weight = { name: "v", dtype: 0, data: new Uint8Array(16), scale: null, shape: [4] };
    expect(() => Q8Matrix.quantize(vec)).toThrow(/expected a matrix/);
    const short: Weight = { name: "s", dtype: 1, data: new Uint8Array(10), scale: null, shape: [2, 4] };
    expect(() => Q8Matrix.quantize(short)).toThrow(/holds 10 bytes, expected 16/);
    const m = Q8Matrix.quantize({ name: "m", dtype: 0, data: new Uint8Array(w.buffer), scale: null, shape: [4, 4] });
    expect(() => m.linear(out, new Float32Array(7), 2)).toThrow(/x holds 7 floats/);
    expect(() => m.linear(out, new Float32Array(8), 2)).toThrow(/out holds 4 floats/);
    expect(() => m.linear(out, x, 1.5)).toThrow(/bad token count/);
  });

  test("one thread and many give identical outputs", () => {
    const N = 4096, K = 256, T = 3, m = headQ;
    const x = randF32(T * K, 12);
    const run = (threads: number) => {
      k.moe_set_threads(threads);
      const out = new Float32Array(T * N);
      m.linear(out, x, T);
      return out;
    };
    const one = run(1), four = run(4);
    expect(Buffer.from(four.buffer).equals(Buffer.from(one.buffer))).toBe(true);
    // Quantizing on several threads gives the same matrix too.
    k.moe_set_threads(1);
    const a = Q8Matrix.quantize(head.w);
    k.moe_set_threads(4);
    const b = Q8Matrix.quantize(head.w);
    expect(Buffer.from(b.q.buffer, b.q.byteOffset, b.q.byteLength).equals(Buffer.from(a.q.buffer, a.q.byteOffset, a.q.byteLength))).toBe(true);
    expect(Array.from(b.scale)).toEqual(Array.from(a.scale));
  });
});
