// moe_linear on the device against the CPU library: every weight dtype, row slices (row0),
// strides, partial 128-blocks, unaligned weights, and both the GEMV (T <= 16) and the
// tensor-core (T > 16) paths.
import { expect, test } from "bun:test";
import { FAKE, Scope, cpu, expectNear, forTargets, randn, randomWeight, rng } from "./harness.ts";

const sc0 = () => FAKE;

// f32 math on both sides, different summation orders (and the tensor-core path's bf16 split of
// the activations, ~2^-24 relative): agreement to ~1e-5 of the row's magnitude.
const ATOL = 2e-4, RTOL = 1e-4;

const cases = [
  { T: 1, N: 96, K: 256, rows: 96, row0: 0 },
  { T: 3, N: 40, K: 200, rows: 300, row0: 130 }, // partial blocks, a slice starting mid-block
  { T: 16, N: 128, K: 384, rows: 128, row0: 0 },
  { T: 37, N: 200, K: 300, rows: 260, row0: 50 }, // tensor-core path with partial tiles
  { T: 70, N: 130, K: 517, rows: 130, row0: 0 }, // K not a multiple of 4: scalar loads
];

forTargets("moe_linear", ({ device }) => {
  const s = device.symbols, c = cpu();
  for (const dtype of [0, 1, 2])
    for (const [i, cs] of cases.entries())
      for (const pad of [0, 3])
        test(`dtype ${dtype} T=${cs.T} N=${cs.N} K=${cs.K} row0=${cs.row0}${pad ? " unaligned" : ""}`, () => {
          const r = rng(1000 * dtype + 10 * i + pad);
          const { T, N, K, rows, row0 } = cs;
          const ldx = K + 3, ldo = N + 5;
          const w = randomWeight(rows, K, dtype, r, pad);
          const x = randn(T * ldx, r);
          const want = new Float32Array(T * ldo).fill(7);
          expect(c.moe_linear(want, ldo, x, ldx, w.data, w.scale, dtype, row0, T, N, K, null)).toBe(0);
          const sc = new Scope(device);
          try {
            const dw = sc.weight(w), out = sc.buf(new Float32Array(T * ldo).fill(7));
            expect(s.moe_linear(out.ptr, ldo, sc.put(x), ldx, dw.data, dw.scale, dtype, row0, T, N, K, null)).toBe(0);
            device.sync();
            expectNear(sc.get(out, new Float32Array(T * ldo)), want, "linear", ATOL, RTOL);
          } finally {
            sc.free();
          }
        });

  test("validation matches the CPU library", () => {
    const x = new Float32Array(4), dx = sc0();
    // [out NULL, ldo < N, F8 without scales, unknown dtype]
    const cases: [boolean, number, number][] = [[true, 4, 0], [false, 0, 0], [false, 4, 2], [false, 4, 9]];
    for (const [nullOut, ldo, dtype] of cases) {
      const a = c.moe_linear(nullOut ? null : x, ldo, x, 4, x, null, dtype, 0, 1, 1, 4, null);
      const b = s.moe_linear(nullOut ? null : dx, ldo, dx, 4, dx, null, dtype, 0, 1, 1, 4, null);
      expect(b).toBe(a);
      expect(String(s.moe_last_error())).toBe(String(c.moe_last_error()));
    }
  });
});
