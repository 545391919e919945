// moe_linear on every ISA path against a float64 JS reference: each dtype, odd sizes (K not a
// multiple of 16 or 128, so partial F8 blocks; N not a multiple of the 2- or 4-row tiles; T = 1,
// the small-batch path and T beyond a token tile/block), row0 slices, row strides, unaligned
// weights. Tolerance: |out - ref| <= 1e-6 * sqrt(K) + 1e-5 * |ref| (fp32 sums, reordered).
import { describe, expect, test } from "bun:test";
import { check, DTYPES, expectClose, ISAS, k, randF32, randWeight, refLinear, useIsa } from "./helpers.ts";

// [T, N, K]
const SHAPES: [number, number, number][] = [
  [1, 1, 1], [1, 7, 33], [1, 130, 200], [2, 5, 17], [3, 37, 129], [5, 9, 256], [8, 64, 256],
  [9, 13, 1000], [13, 65, 129], [40, 33, 300], [70, 6, 48],
];

describe("moe_linear", () => {
  for (const isa of ISAS)
    for (const dtype of DTYPES)
      test(`${isa} dtype ${dtype}`, () => {
        useIsa(isa);
        for (const [T, N, K] of SHAPES) {
          const rowsTotal = N + 131, row0 = 131; // a slice whose rows straddle 128-row blocks
          const w = randWeight(dtype, rowsTotal, K, T * 1000 + N + K, (N % 3) + 1);
          const ldx = K + 3, ldo = N + 2;
          const x = randF32(T * ldx, K + 7);
          const out = new Float32Array(T * ldo).fill(NaN);
          check("moe_linear", k.moe_linear(out, ldo, x, ldx, w.bytes, w.scale, dtype, row0, T, N, K, null));
          const ref = refLinear(x, ldx, w, row0, T, N, K);
          const got = new Float32Array(T * N);
          for (let t = 0; t < T; t++) got.set(out.subarray(t * ldo, t * ldo + N), t * N);
          expectClose(got, ref, 1e-6 * Math.sqrt(K), 1e-5, `${isa} dtype ${dtype} T${T} N${N} K${K}`);
          for (let t = 0; t < T; t++) expect(Number.isNaN(out[t * ldo + N])).toBe(true); // padding untouched
        }
      });

  test("rejects bad arguments with a status, never crashes", () => {
    const w = randWeight(2, 4, 4, 1);
    const out = new Float32Array(4), x = new Float32Array(4);
    expect(k.moe_linear(out, 4, x, 4, w.bytes, null, 2, 0, 1, 4, 4, null)).not.toBe(0); // F8 without scales
    expect(k.moe_linear(out, 2, x, 4, w.bytes, w.scale, 2, 0, 1, 4, 4, null)).not.toBe(0); // ldo < N
    expect(k.moe_linear(out, 4, x, 4, w.bytes, w.scale, 7, 0, 1, 4, 4, null)).not.toBe(0); // dtype
  });

  test("T = 0 is a no-op", () => {
    const w = randWeight(1, 4, 4, 1);
    check("moe_linear", k.moe_linear(new Float32Array(4), 4, new Float32Array(4), 4, w.bytes, null, 1, 0, 0, 4, 4, null));
  });

  test("many threads agree with one", () => {
    const w = randWeight(2, 300, 520, 5);
    const x = randF32(11 * 520, 6);
    const run = (threads: number) => {
      k.moe_set_threads(threads);
      const out = new Float32Array(11 * 300);
      check("moe_linear", k.moe_linear(out, 300, x, 520, w.bytes, w.scale, 2, 0, 11, 300, 520, null));
      return out;
    };
    const before = k.moe_get_threads();
    const one = run(1), four = run(4);
    k.moe_set_threads(before);
    expect(Array.from(four)).toEqual(Array.from(one)); // rows split across threads, sums unchanged
  });
});
