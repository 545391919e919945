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
import { dlopen, ptr } from "bun:ffi";
import { afterAll, describe, expect, test } from "bun:test";
import type { Weight } from "../../src/checkpoint/checkpoint.ts";
import { libraryPath } from "../../src/kernels/ffi.ts";
import { cpuKernels, type ExpertGroups, type ExpertWeights } from "../../src/kernels/kernels.ts";
import { Q8_SYMBOLS, Q8Experts, Q8Matrix } from "../../src/kernels/q8.ts";
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

// ---- Q8Experts: grouped int8 SwiGLU experts (kernels/cpu/q8_experts.c) -----------------------
// Against the exact moe_experts (cpuKernels().experts) on the same F8 / BF16 weights. Bounds from
// a float64 reference: g = W1 x and u = W3 x are off by at most the GEMV bound above (B1, B3);
// |silu'| <= 1.1, so h = silu(g) u is off by at most Bh = 1.1 B1 (|u| + B3) + |silu(g)| B3; then
// y = W2 h is off by sum |W2| Bh plus the GEMV bound of W2 on h (its scale at most
// absmax(|h| + Bh) / 127); out gets rw times that per row, plus f32 slack for both kernels (the
// worst error measured ~1.7% of it: the bound assumes every rounding aligns). Typical error, the
// relative RMS over a call's outputs: int8 weights, x and h each add ~1% (float64 emulation on
// the small model's MTP-layer experts: 1.0-1.1% each, x 1.8% with outlier channels), ~1.8-2.4%
// together; these data sets measure 1.1-1.7%, checked against 3%.
interface TestExpert { w: ExpertWeights; W1: Float64Array; W3: Float64Array; W2: Float64Array }
function makeExperts(make: (rows: number, cols: number, seed: number) => Mat, E: number, D: number, I: number, seed: number, none: number[] = []) {
  return Array.from({ length: E }, (_, e): TestExpert | null => {
    if (none.includes(e)) return null;
    const m1 = make(I, D, seed + 3 * e), m3 = make(I, D, seed + 3 * e + 1), m2 = make(D, I, seed + 3 * e + 2);
    return { w: { w1: m1.w, w3: m3.w, w2: m2.w }, W1: m1.W, W3: m3.W, W2: m2.W };
  });
}

/** Groups for Kernels.experts from (token, expert, weight) triples, rows in expert order. */
function groupsOf(pairs: [number, number, number][], E: number): ExpertGroups {
  const sorted = pairs.map((p, i) => [...p, i]).sort((a, b) => a[1] - b[1] || a[3] - b[3]);
  const offsets = new Int32Array(E + 1);
  for (const [, e] of sorted) offsets[e + 1]++;
  for (let e = 0; e < E; e++) offsets[e + 1] += offsets[e];
  return { offsets, rows: Int32Array.from(sorted, (p) => p[0]), rw: Float32Array.from(sorted, (p) => p[2]) };
}
/** Each of T tokens to topk distinct experts among the first `among`, weights in [0.25, 0.75). */
function route(T: number, topk: number, among: number, E: number, seed: number): ExpertGroups {
  const r = rng(seed), pairs: [number, number, number][] = [];
  for (let t = 0; t < T; t++) {
    const chosen = new Set<number>();
    while (chosen.size < topk) chosen.add(Math.floor(((r() + 1) / 2) * among));
    for (const e of chosen) pairs.push([t, e, 0.5 + r() / 4]);
  }
  return groupsOf(pairs, E);
}

/** The float64 increment of out, its error bound and the scale sum rw |W2| |h| per output. */
function expertsReference(ex: (TestExpert | null)[], g: ExpertGroups, x: Float32Array, T: number, D: number, I: number) {
  const delta = new Float64Array(T * D), bound = new Float64Array(T * D), scale = new Float64Array(T * D);
  const gemvBound = (W: Float64Array, n: number, K: number, v: ArrayLike<number>, off: number, sv: number, l1v: number) => {
    const sw = absmax(W, n * K, K) / 127;
    let l1w = 0, s = 0;
    for (let c = 0; c < K; c++) { l1w += Math.abs(W[n * K + c]); s += W[n * K + c] * v[off + c]; }
    return { s, b: (sw / 2) * l1v + (sv / 2) * l1w + (K * sv * sw) / 4, sw, l1w };
  };
  for (let e = 0; e < ex.length; e++)
    for (let r = g.offsets[e]; r < g.offsets[e + 1]; r++) {
      const m = ex[e]!, t = g.rows[r], w = g.rw[r], xo = t * D;
      const sx = absmax(x, xo, D) / 127;
      let l1x = 0;
      for (let c = 0; c < D; c++) l1x += Math.abs(x[xo + c]);
      const h = new Float64Array(I), bh = new Float64Array(I);
      for (let n = 0; n < I; n++) {
        const a = gemvBound(m.W1, n, D, x, xo, sx, l1x), b = gemvBound(m.W3, n, D, x, xo, sx, l1x);
        const silu = a.s / (1 + Math.exp(-a.s));
        h[n] = silu * b.s;
        bh[n] = 1.1 * a.b * (Math.abs(b.s) + b.b) + Math.abs(silu) * b.b + 1e-6 * (Math.abs(a.s) + a.b) * (Math.abs(b.s) + b.b);
      }
      let hmax = 0, l1h = 0;
      for (let n = 0; n < I; n++) { hmax = Math.max(hmax, Math.abs(h[n]) + bh[n]); l1h += Math.abs(h[n]) + bh[n]; }
      const shMax = hmax / 127;
      for (let d = 0; d < D; d++) {
        const y = gemvBound(m.W2, d, I, h, 0, shMax, l1h);
        let prop = 0, sc = 0, mag = 0;
        for (let n = 0; n < I; n++) {
          const a = Math.abs(m.W2[d * I + n]);
          prop += a * bh[n]; sc += a * Math.abs(h[n]); mag += a * (Math.abs(h[n]) + bh[n]);
        }
        delta[t * D + d] += w * y.s;
        bound[t * D + d] += w * (prop + y.b + 1e-5 * mag);
        scale[t * D + d] += w * sc;
      }
    }
  return { delta, bound, scale };
}

const EXPERT_SETS: [string, (rows: number, cols: number, seed: number) => Mat][] = [["F8", f8Mat], ["BF16", bf16Mat]];
const asWeights = (ex: (TestExpert | null)[]) => ex.map((e) => e?.w ?? null);

describe("Q8Experts", () => {
  const exact = cpuKernels();
  // The small model's expert shape, and one with tails (rows not in 4s, K not in 64s, partial F8 blocks).
  const SHAPES: [number, number][] = [[256, 128], [130, 70]];
  const E = 8;

  test("close to the exact experts: within the propagated bound, 3% relative RMS; accumulates into out", () => {
    for (const [name, make] of EXPERT_SETS)
      for (const [D, I] of SHAPES) {
        const ex = makeExperts(make, E, D, I, D + I, [7]); // expert 7: no weights, never routed
        const q = new Q8Experts(asWeights(ex));
        // [T, topk, x scale]: at scale 100, g reaches +-1000 (silu saturates, exp's argument clamps).
        for (const [T, topk, xs] of [[1, 4, 1], [3, 4, 1], [3, 7, 1], [1, 1, 1], [2, 3, 100]]) {
          const g = route(T, topk, 7, E, 10 * T + topk);
          const x = randF32(T * D, T + D, xs), out0 = randF32(T * D, T + I); // out starts non-zero
          const { delta, bound } = expertsReference(ex, g, x, T, D, I);
          const want = Float32Array.from(out0), got = Float32Array.from(out0);
          exact.experts(want, x, g, asWeights(ex), T, D, I);
          q.forward(got, x, g, T, D, I);
          let se = 0, sd = 0;
          for (let i = 0; i < T * D; i++) {
            const err = Math.abs(got[i] - want[i]);
            if (!(err <= bound[i] + 1e-6 * Math.abs(out0[i]))) throw new Error(`${name} D${D} I${I} T${T} x${topk} out ${i}: ${got[i]} vs ${want[i]} (bound ${bound[i]})`);
            se += (got[i] - want[i]) ** 2;
            sd += delta[i] ** 2;
          }
          const rel = Math.sqrt(se / sd);
          if (!(rel <= 0.03)) throw new Error(`${name} D${D} I${I} T${T} x${topk}: relative RMS error ${rel}`);
        }
      }
  });

  test("every ISA path and thread count gives bit-identical outputs", () => {
    for (const [D, I] of SHAPES) {
      const ex = makeExperts(bf16Mat, E, D, I, 5);
      const q = new Q8Experts(asWeights(ex));
      // [256, 128]: 1 x 1 runs inline, 1 x 4 and up go to the pool when threads > 1; [130, 70]:
      // inline up to 3 x 4.
      for (const [T, topk] of [[1, 1], [1, 4], [3, 4], [3, 8]]) {
        const g = route(T, topk, E, E, 7 * T + topk), x = randF32(T * D, 3 * T), out0 = randF32(T * D, 4 * T);
        const runs: Float32Array[] = [];
        for (const threads of [1, 4])
          for (const isa of ISAS) {
            useIsa(isa);
            k.moe_set_threads(threads);
            const out = Float32Array.from(out0);
            q.forward(out, x, g, T, D, I);
            runs.push(out);
          }
        for (let i = 1; i < runs.length; i++)
          expect(Buffer.from(runs[i].buffer).equals(Buffer.from(runs[0].buffer)), `run ${i} D${D} T${T} x${topk}`).toBe(true);
      }
    }
    k.moe_set_threads(threadsBefore);
  });

  test("experts without rows are never quantized; no rows at all leaves out alone", () => {
    const D = 64, I = 32;
    const ex = makeExperts(bf16Mat, 4, D, I, 9, [1]);
    // Expert 2 holds a NaN: quantizing it would throw, but it gets no rows.
    (ex[2]!.w.w1.data as Uint8Array)[1] = 0x7f, (ex[2]!.w.w1.data as Uint8Array)[0] = 0xc0;
    expect(() => Q8Matrix.quantize(ex[2]!.w.w1)).toThrow(/holds an Inf or NaN/);
    const q = new Q8Experts(asWeights(ex));
    const x = randF32(2 * D, 1), out = randF32(2 * D, 2), before = Float32Array.from(out);
    q.forward(out, x, groupsOf([], 4), 2, D, I);
    expect(Array.from(out)).toEqual(Array.from(before));
    const g = groupsOf([[0, 3, 0.5], [1, 0, 0.25], [1, 3, 1]], 4);
    q.forward(out, x, g, 2, D, I);
    const want = Float32Array.from(before);
    exact.experts(want, x, g, asWeights(ex), 2, D, I);
    const { bound } = expertsReference(ex, g, x, 2, D, I);
    for (let i = 0; i < 2 * D; i++) expect(Math.abs(out[i] - want[i])).toBeLessThanOrEqual(bound[i]);
  });

  test("an Inf in a token's x gives NaN for that token only", () => {
    const D = 64, I = 32, ex = makeExperts(bf16Mat, 2, D, I, 11);
    const q = new Q8Experts(asWeights(ex));
    const x = randF32(2 * D, 3), out = new Float32Array(2 * D);
    x[D + 5] = Infinity;
    q.forward(out, x, groupsOf([[0, 0, 1], [1, 0, 1], [0, 1, 1]], 2), 2, D, I);
    for (let d = 0; d < D; d++) {
      expect(Number.isFinite(out[d])).toBe(true);
      expect(Number.isNaN(out[D + d])).toBe(true);
    }
  });

  test("bad arguments give a clear error, never a crash", () => {
    const D = 64, I = 32, ex = makeExperts(bf16Mat, 2, D, I, 13);
    const q = new Q8Experts(asWeights(ex));
    const x = randF32(2 * D, 1), out = new Float32Array(2 * D), g = groupsOf([[0, 0, 1], [1, 1, 1]], 2);
    // The C side, on pointer tables to int8 copies made as Q8Experts makes them.
    const mats = ex.map((e) => [e!.w.w1, e!.w.w3, e!.w.w2].map((w) => Q8Matrix.quantize(w)));
    const t = [0, 1, 2].flatMap((m) => [
      BigUint64Array.from(mats, (qs) => BigInt(ptr(qs[m].q))), BigUint64Array.from(mats, (qs) => BigInt(ptr(qs[m].scale))),
      BigUint64Array.from(mats, (qs) => BigInt(ptr(qs[m].rowsum))),
    ]);
    const call = (o: Partial<Record<string, unknown>>) => {
      const a = { out, ldo: D, x, ldx: D, offsets: g.offsets, rows: g.rows, rw: g.rw, E: 2, D, I, ...o };
      const tt = (o.tables as (BigUint64Array | null)[] | undefined) ?? t;
      return raw.moe_cpu_q8_experts(a.out as Float32Array, a.ldo as number, a.x as Float32Array, a.ldx as number, a.offsets as Int32Array,
        a.rows as Int32Array, a.rw as Float32Array, tt[0], tt[1], tt[2], tt[3], tt[4], tt[5], tt[6], tt[7], tt[8], a.E as number, a.D as number, a.I as number);
    };
    const fails = (st: number, msg: RegExp) => {
      expect(st).not.toBe(0);
      expect(String(raw.moe_last_error())).toMatch(msg);
    };
    expect(call({})).toBe(0);
    fails(call({ E: 0 }), /moe_cpu_q8_experts: E must be > 0/);
    fails(call({ D: 0 }), /moe_cpu_q8_experts: D must be > 0/);
    fails(call({ I: -1 }), /moe_cpu_q8_experts: I must be > 0/);
    fails(call({ D: 1 << 20 }), /D 1048576 or I 32 exceeds 131072/);
    fails(call({ out: null }), /moe_cpu_q8_experts: out is NULL/);
    fails(call({ x: null }), /moe_cpu_q8_experts: x is NULL/);
    fails(call({ offsets: null }), /moe_cpu_q8_experts: offsets is NULL/);
    fails(call({ rows: null }), /moe_cpu_q8_experts: rows is NULL/);
    fails(call({ rw: null }), /moe_cpu_q8_experts: rw is NULL/);
    fails(call({ tables: [t[0], t[1], t[2], t[3], null, t[5], t[6], t[7], t[8]] }), /moe_cpu_q8_experts: s3 is NULL/);
    fails(call({ offsets: Int32Array.from([1, 1, 2]) }), /offsets\[0\] must be 0/);
    fails(call({ offsets: Int32Array.from([0, 2, 1]) }), /offsets must not decrease \(expert 1\)/);
    fails(call({ rows: Int32Array.from([0, -1]) }), /row 1 has token index -1/);
    fails(call({ ldx: D - 1 }), /row strides ldx 63, ldo 64 below D 64/);
    fails(call({ ldo: 3 }), /row strides ldx 64, ldo 3 below D 64/);
    const noW2 = [...t.slice(0, 6), BigUint64Array.from([t[6][0], 0n]), t[7], t[8]];
    fails(call({ tables: noW2 }), /expert 1 has rows but no \(complete\) int8 weights/);
    expect(call({ offsets: Int32Array.from([0, 0, 0]) })).toBe(0); // no rows: nothing to do
    // Shared with Q8Experts: the same bytes out.
    const viaClass = new Float32Array(2 * D), viaC = new Float32Array(2 * D);
    q.forward(viaClass, x, g, 2, D, I);
    expect(call({ out: viaC })).toBe(0);
    expect(Array.from(viaC)).toEqual(Array.from(viaClass));
    // The TS side checks what C cannot see: shapes, lengths and token indices.
    expect(() => q.forward(out, x, { ...g, offsets: Int32Array.from([0, 2]) }, 2, D, I)).toThrow(/2 offsets for 2 experts/);
    expect(() => q.forward(out, x, { ...g, rows: Int32Array.from([0, 2]) }, 2, D, I)).toThrow(/row 1 has token 2, expected below 2/);
    expect(() => q.forward(out, x, { ...g, rw: new Float32Array(1) }, 2, D, I)).toThrow(/2 rows, but rows holds 2 and rw 1/);
    expect(() => q.forward(out, new Float32Array(D), g, 2, D, I)).toThrow(/x holds 64 floats, expected 2 x 64/);
    expect(() => q.forward(new Float32Array(D), x, g, 2, D, I)).toThrow(/out holds 64 floats, expected 2 x 64/);
    expect(() => q.forward(out, x, g, 1.5, D, I)).toThrow(/bad token count 1.5/);
    expect(() => q.forward(out, x, g, 2, D, 16)).toThrow(/D 64, I 16, but the experts are \[64,32\]/);
    const holes = new Q8Experts([ex[0]!.w, null]);
    expect(() => holes.forward(out, x, g, 2, D, I)).toThrow(/expert 1 has rows but no weights/);
    const wrong = new Q8Experts([ex[0]!.w, { ...ex[1]!.w, w2: ex[1]!.w.w1 }]);
    expect(() => wrong.forward(out, x, g, 2, D, I)).toThrow(/expert 1's w has shape \[32,64\], expected \[64, 32\]/);
  });
});
