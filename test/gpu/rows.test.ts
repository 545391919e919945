// Row-wise and element-wise kernels on the device against the CPU library: rmsnorm, embed,
// rope, silu_mul, add. Same arithmetic on both sides (the device may fuse a multiply-add):
// agreement to a few f32 ulps.
import { expect, test } from "bun:test";
import { Scope, cpu, withScope, expectNear, forTargets, randn, randomWeight, rng } from "./harness.ts";

const ATOL = 1e-5, RTOL = 1e-5;

forTargets("row kernels", ({ device }) => {
  const s = device.symbols, c = cpu();
  const within = (f: (sc: Scope) => void) => withScope(device, f);

  for (const dtype of [0, 1])
    test(`rmsnorm (dtype ${dtype}, strided, in place)`, () =>
      within((sc) => {
        const r = rng(11 + dtype), T = 5, D = 300, ld = 310;
        const w = randomWeight(1, D, dtype, r, 1), x = randn(T * ld, r, 3);
        const want = x.slice();
        expect(c.moe_rmsnorm(want, ld, want, ld, w.data, dtype, T, D, 1e-6, null)).toBe(0);
        const dx = sc.buf(x), dw = sc.weight(w);
        expect(s.moe_rmsnorm(dx.ptr, ld, dx.ptr, ld, dw.data, dtype, T, D, 1e-6, null)).toBe(0);
        expectNear(sc.get(dx, new Float32Array(T * ld)), want, "rmsnorm", ATOL, RTOL);
      }));

  test("embed (bf16, unaligned table)", () =>
    within((sc) => {
      const r = rng(3), V = 50, D = 70, ids = new Int32Array([4, 49, 0, 4, 17]);
      const w = randomWeight(V, D, 1, r, 1);
      const want = new Float32Array(ids.length * D);
      expect(c.moe_embed(want, ids, w.data, 1, ids.length, D, V, null)).toBe(0);
      const out = sc.alloc(want.byteLength);
      expect(s.moe_embed(out.ptr, sc.put(ids), sc.weight(w).data, 1, ids.length, D, V, null)).toBe(0);
      expect(Array.from(sc.get(out, new Float32Array(want.length)))).toEqual(Array.from(want));
    }));

  test("rope over heads with an offset", () =>
    within((sc) => {
      const r = rng(5), T = 6, H = 3, dn = 8, dr = 16, ldh = dn + dr, ldt = H * ldh;
      const x = randn(T * ldt, r), pos = new Int32Array([0, 1, 7, 100, 4095, 70000]);
      const inv = new Float32Array(dr / 2).map((_, i) => Math.fround(1 / 10000 ** ((2 * i) / dr)));
      const want = x.slice();
      expect(c.moe_rope(want, ldt, ldh, H, dn, pos, inv, T, dr, null)).toBe(0);
      const dx = sc.buf(x);
      expect(s.moe_rope(dx.ptr, ldt, ldh, H, dn, sc.put(pos), sc.put(inv), T, dr, null)).toBe(0);
      expectNear(sc.get(dx, new Float32Array(x.length)), want, "rope", ATOL, RTOL);
    }));

  test("silu_mul and add with strides", () =>
    within((sc) => {
      const r = rng(9), T = 4, I = 333, ld = 340;
      const g = randn(T * ld, r, 4), u = randn(T * ld, r), y = randn(T * ld, r);
      const want = new Float32Array(T * ld);
      expect(c.moe_silu_mul(want, ld, g, ld, u, ld, T, I, null)).toBe(0);
      const out = sc.alloc(want.byteLength);
      expect(s.moe_silu_mul(out.ptr, ld, sc.put(g), ld, sc.put(u), ld, T, I, null)).toBe(0);
      const got = sc.get(out, new Float32Array(T * ld));
      for (let t = 0; t < T; t++)
        expectNear(got.subarray(t * ld, t * ld + I), want.subarray(t * ld, t * ld + I), "silu_mul", ATOL, RTOL);
      const wantY = y.slice();
      expect(c.moe_add(wantY, ld, g, ld, -0.5, T, I, null)).toBe(0);
      const dy = sc.buf(y);
      expect(s.moe_add(dy.ptr, ld, sc.put(g), ld, -0.5, T, I, null)).toBe(0);
      expectNear(sc.get(dy, new Float32Array(y.length)), wantY, "add", ATOL, RTOL);
    }));
});
