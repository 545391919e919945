// The gate and SwiGLU on every ISA path: moe_gate picks the same experts as the portable path
// (weights within 1e-6 + 1e-5 * |ref|), moe_silu_mul (vector exp) against a float64 JS
// reference within 1e-6 + 2e-6 * |ref|, including odd lengths and large |g| (exp saturation).
import { describe, expect, test } from "bun:test";
import { check, expectClose, ISAS, k, randF32, randWeight, useIsa } from "./helpers.ts";

describe("moe_gate", () => {
  const T = 37, D = 200, E = 64;
  const w = randWeight(1, E, D, 41, 1);
  const x = randF32(T * D, 42, 0.2);
  const bias = randF32(E, 43, 0.05);
  const run = (isa: string) => {
    useIsa(isa);
    const ids = new Int32Array(T * 6), weights = new Float32Array(T * 6);
    check("moe_gate", k.moe_gate(ids, weights, x, D, w.bytes, 1, bias, T, D, E, 8, 4, 6, 0, 1, 2.5, null));
    return { ids, weights };
  };
  const ref = run("portable");
  for (const isa of ISAS)
    test(isa, () => {
      const got = run(isa);
      expect(Array.from(got.ids)).toEqual(Array.from(ref.ids));
      expectClose(got.weights, ref.weights, 1e-6, 1e-5, `${isa} gate weights`);
    });
});

describe("moe_silu_mul", () => {
  for (const isa of ISAS)
    test(isa, () => {
      useIsa(isa);
      for (const n of [1, 15, 16, 17, 100]) {
        const g = randF32(2 * n, n, 30), u = randF32(2 * n, n + 1); // |g| up to 30: exp(-g) spans 1e-13..1e13
        g[0] = -100; // exp overflows in f32: silu -> -0
        const out = new Float32Array(2 * n).fill(NaN);
        check("moe_silu_mul", k.moe_silu_mul(out, n, g, n, u, n, 2, n, null));
        const ref = Float64Array.from(g, (v, i) => (v / (1 + Math.exp(-v))) * u[i]);
        expectClose(out, ref, 1e-6, 2e-6, `${isa} silu n${n}`);
      }
    });
});

describe("moe_parallel_for via moe_linear", () => {
  test("thread counts 1..4 give identical results", () => {
    const w = randWeight(2, 77, 300, 51);
    const x = randF32(3 * 300, 52);
    const before = k.moe_get_threads();
    const outs = [1, 2, 3, 4].map((n) => {
      k.moe_set_threads(n);
      const out = new Float32Array(3 * 77);
      check("moe_linear", k.moe_linear(out, 77, x, 300, w.bytes, w.scale, 2, 0, 3, 77, 300, null));
      return Array.from(out);
    });
    k.moe_set_threads(before);
    for (const o of outs) expect(o).toEqual(outs[0]);
  });
});

describe("moe_argmax", () => {
  /** The reference: a scan that keeps the first index unless a later value compares greater. */
  const scan = (l: Float32Array) => {
    let b = 0;
    for (let v = 1; v < l.length; v++) if (l[v] > l[b]) b = v;
    return b;
  };
  const rows: [string, Float32Array][] = [
    ["random, V not a multiple of 16", randF32(4099, 71)],
    ["V = 1", Float32Array.from([3])],
    ["V = 7", Float32Array.from([1, 2, 9, 9, 0, 9, 8])],
    ["a tie: the first wins", (() => { const l = randF32(1000, 72); l[10] = l[500] = 50; return l; })()],
    ["NaNs never win", (() => { const l = randF32(100, 73); l[5] = NaN; l[40] = NaN; return l; })()],
    ["a NaN in front gives 0", (() => { const l = randF32(100, 74); l[0] = NaN; return l; })()],
    ["all -inf", new Float32Array(33).fill(-Infinity)],
    ["-0 before +0", Float32Array.from([-1, -0, 0, -2])],
    ["maximum in the scalar tail", (() => { const l = randF32(35, 75); l[34] = 9; return l; })()],
  ];
  for (const [name, l] of rows)
    test(name, () => {
      const ids = new Int32Array(2), two = new Float32Array(2 * l.length);
      two.set(l);
      two.set(l.map((x) => -x), l.length);
      check("argmax", k.moe_argmax(ids, two, 2, l.length, null));
      expect(ids[0]).toBe(scan(l));
      expect(ids[1]).toBe(scan(l.map((x) => -x)));
    });
});
