// MLA kernels on the device against the CPU library: the paged latent cache, kv_b absorption
// into the query and the output, and both attention forms (paged absorbed over several
// sequences of mixed decode/prefill; naive expanded). Online vs two-pass softmax and different
// summation orders: agreement to ~1e-6 of the values' scale.
import { expect, test } from "bun:test";
import { addr } from "../../src/kernels/device.ts";
import { FAKE, Scope, cpu, withScope, expectNear, forTargets, randn, randomWeight, rng } from "./harness.ts";

const ATOL = 2e-5, RTOL = 1e-4;

forTargets("MLA kernels", ({ device }) => {
  const s = device.symbols, c = cpu();
  const within = (f: (sc: Scope) => void) => withScope(device, f);

  test("kv_write then kv_gather through a paged cache", () =>
    within((sc) => {
      const r = rng(21), T = 5, C = 40, dr = 8, pages = 4, ps = 4, ld = C + dr + 3;
      const lat = randn(T * ld, r), slots = new Int32Array([13, 2, 7, 8, 0]), bt = new Int32Array([3, 0, 1, 2]);
      const kv = new Float32Array(pages * ps * C), pe = new Float32Array(pages * ps * dr);
      expect(c.moe_kv_write(kv, pe, null, 0, lat, ld, lat.subarray(C), ld, slots, T, C, dr, pages * ps, null)).toBe(0);
      const dkv = sc.buf(new Float32Array(kv.length)), dpe = sc.buf(new Float32Array(pe.length)), dl = sc.put(lat);
      expect(s.moe_kv_write(dkv.ptr, dpe.ptr, null, 0, dl, ld, addr(dl, 4 * C), ld, sc.put(slots), T, C, dr, pages * ps, null)).toBe(0);
      expect(Array.from(sc.get(dkv, new Float32Array(kv.length)))).toEqual(Array.from(kv));
      expect(Array.from(sc.get(dpe, new Float32Array(pe.length)))).toEqual(Array.from(pe));
      const L = 14, gl = new Float32Array(L * C), gp = new Float32Array(L * dr);
      expect(c.moe_kv_gather(gl, gp, kv, pe, null, 0, bt, L, C, dr, ps, pages * ps, null)).toBe(0);
      const ol = sc.alloc(gl.byteLength), op = sc.alloc(gp.byteLength);
      expect(s.moe_kv_gather(ol.ptr, op.ptr, dkv.ptr, dpe.ptr, null, 0, sc.put(bt), L, C, dr, ps, pages * ps, null)).toBe(0);
      expect(Array.from(sc.get(ol, new Float32Array(gl.length)))).toEqual(Array.from(gl));
      expect(Array.from(sc.get(op, new Float32Array(gp.length)))).toEqual(Array.from(gp));
    }));

  test("a KV slot or page outside the cache: the device reports the CPU's status and message at sync", () =>
    within((sc) => {
      const T = 2, C = 8, dr = 4, pages = 3, ps = 4, n = pages * ps, ld = C + dr;
      const lat = new Float32Array(T * ld).fill(1), slots = new Int32Array([1, n]);
      const kv = new Float32Array(n * C), pe = new Float32Array(n * dr);
      const st = c.moe_kv_write(kv, pe, null, 0, lat, ld, lat.subarray(C), ld, slots, T, C, dr, n, null);
      const dkv = sc.buf(kv), dpe = sc.buf(pe), dl = sc.put(lat);
      expect(s.moe_kv_write(dkv.ptr, dpe.ptr, null, 0, dl, ld, addr(dl, 4 * C), ld, sc.put(slots), T, C, dr, n, null)).toBe(0);
      expect(s.moe_sync(null)).toBe(st);
      expect(String(s.moe_last_error())).toBe(String(c.moe_last_error()));
      const bt = new Int32Array([2, pages]), L = ps + 1, gl = new Float32Array(L * C), gp = new Float32Array(L * dr);
      const st2 = c.moe_kv_gather(gl, gp, kv, pe, null, 0, bt, L, C, dr, ps, n, null);
      expect(s.moe_kv_gather(sc.alloc(gl.byteLength).ptr, sc.alloc(gp.byteLength).ptr, dkv.ptr, dpe.ptr, null, 0, sc.put(bt), L, C, dr, ps, n, null)).toBe(0);
      expect(s.moe_sync(null)).toBe(st2);
      expect(String(s.moe_last_error())).toBe(String(c.moe_last_error()));
      const H = 2, dn = 4, ql = new Float32Array(H * C), q = new Float32Array(H * (dn + dr)), cuQ = new Int32Array([0, 1]), ctx = new Int32Array([L]);
      const st3 = c.moe_mla_attend(new Float32Array(H * C), ql, q, kv, pe, null, 0, bt, 2, cuQ, ctx, 1, H, C, dn, dr, ps, n, 0.5, null);
      expect(s.moe_mla_attend(sc.alloc(4 * H * C).ptr, sc.put(ql), sc.put(q), dkv.ptr, dpe.ptr, null, 0, sc.put(bt), 2, cuQ, ctx, 1, H, C, dn, dr, ps, n, 0.5, null)).toBe(0);
      expect(s.moe_sync(null)).toBe(st3);
      expect(String(s.moe_last_error())).toBe(String(c.moe_last_error()));
      expect([st, st2, st3]).toEqual([1, 1, 1]);
    }));

  for (const dtype of [1, 2])
    for (const T of [2, 21])
      test(`absorb_q / absorb_out (dtype ${dtype}, T=${T})`, () =>
        within((sc) => {
          const r = rng(31 + T + dtype), H = 3, dn = 24, dr = 8, dv = 20, C = 136;
          const w = randomWeight(H * (dn + dv), C, dtype, r, 1), q = randn(T * H * (dn + dr), r), ol = randn(T * H * C, r);
          const dw = sc.weight(w);
          const ql = new Float32Array(T * H * C), out = new Float32Array(T * H * dv);
          expect(c.moe_mla_absorb_q(ql, q, w.data, w.scale, dtype, T, H, dn, dr, dv, C, null)).toBe(0);
          expect(c.moe_mla_absorb_out(out, ol, w.data, w.scale, dtype, T, H, dn, dv, C, null)).toBe(0);
          const dql = sc.alloc(ql.byteLength), dout = sc.alloc(out.byteLength);
          expect(s.moe_mla_absorb_q(dql.ptr, sc.put(q), dw.data, dw.scale, dtype, T, H, dn, dr, dv, C, null)).toBe(0);
          expect(s.moe_mla_absorb_out(dout.ptr, sc.put(ol), dw.data, dw.scale, dtype, T, H, dn, dv, C, null)).toBe(0);
          expectNear(sc.get(dql, new Float32Array(ql.length)), ql, "absorb_q", 1e-4, 1e-4);
          expectNear(sc.get(dout, new Float32Array(out.length)), out, "absorb_out", 1e-4, 1e-4);
        }));

  test("attend over a paged cache: decode and prefill rows of three sequences", () =>
    within((sc) => {
      const r = rng(41), H = 3, C = 48, dn = 16, dr = 8, ps = 8, maxBlocks = 6, pages = 18;
      const kv = randn(pages * ps * C, r), pe = randn(pages * ps * dr, r);
      const ctx = new Int32Array([1, 37, 20]), cuQ = new Int32Array([0, 1, 1 + 33, 1 + 33 + 1]); // decode, prefill, decode
      const bt = new Int32Array(3 * maxBlocks).map((_, i) => (i * 7) % pages);
      const T = cuQ[3], ql = randn(T * H * C, r, 0.3), q = randn(T * H * (dn + dr), r, 0.3), scale = 0.17;
      const want = new Float32Array(T * H * C);
      expect(c.moe_mla_attend(want, ql, q, kv, pe, null, 0, bt, maxBlocks, cuQ, ctx, 3, H, C, dn, dr, ps, pages * ps, scale, null)).toBe(0);
      const out = sc.alloc(want.byteLength);
      expect(s.moe_mla_attend(out.ptr, sc.put(ql), sc.put(q), sc.put(kv), sc.put(pe), null, 0, sc.put(bt), maxBlocks, cuQ, ctx, 3, H, C, dn,
        dr, ps, pages * ps, scale, null)).toBe(0);
      expectNear(sc.get(out, new Float32Array(want.length)), want, "attend", ATOL, RTOL);
      const bad = new Int32Array([0, 2, 2, 2]);
      expect(s.moe_mla_attend(out.ptr, FAKE, FAKE, FAKE, FAKE, null, 0, FAKE, maxBlocks, bad, ctx, 3, H, C, dn, dr, ps, pages * ps, scale, null))
        .toBe(c.moe_mla_attend(want, ql, q, kv, pe, null, 0, bt, maxBlocks, bad, ctx, 3, H, C, dn, dr, ps, pages * ps, scale, null));
      expect(String(s.moe_last_error())).toBe(String(c.moe_last_error()));
    }));

  for (const [T, L, pos0, dn, dr, dv] of [[40, 45, 5, 16, 8, 12], [5, 70, 3, 32, 16, 40], [33, 33, 0, 24, 8, 64]])
    test(`attend_naive over expanded keys (T=${T} L=${L} from ${pos0}, dn ${dn} dr ${dr} dv ${dv})`, () =>
      within((sc) => {
        const r = rng(51 + T), H = 2, scale = 0.2;
        const q = randn(T * H * (dn + dr), r, 0.5), kv = randn(L * H * (dn + dv), r), kpe = randn(L * dr, r);
        const want = new Float32Array(T * H * dv);
        expect(c.moe_mla_attend_naive(want, q, kv, kpe, T, L, pos0, H, dn, dr, dv, scale, null)).toBe(0);
        const out = sc.alloc(want.byteLength);
        expect(s.moe_mla_attend_naive(out.ptr, sc.put(q), sc.put(kv), sc.put(kpe), T, L, pos0, H, dn, dr, dv, scale, null)).toBe(0);
        expectNear(sc.get(out, new Float32Array(want.length)), want, "attend_naive", ATOL, RTOL);
      }));
});
