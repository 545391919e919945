// The MoE kernels on the device against the CPU library: the noaux_tc gate (same experts, same
// order, weights to f32 rounding) and the grouped experts, in the decode (GEMV) and prefill
// (tensor-core) regimes, with empty experts and unaligned weights.
import { expect, test } from "bun:test";
import { ptr } from "bun:ffi";
import { FAKE, type HostWeight, Scope, cpu, expectNear, forTargets, randn, randomWeight, rng } from "./harness.ts";

forTargets("MoE kernels", ({ device }) => {
  const s = device.symbols, c = cpu();

  const gates = [
    { T: 7, D: 96, E: 16, G: 4, TG: 2, k: 4, f: 0, bias: true, dtype: 1 },
    { T: 3, D: 200, E: 64, G: 8, TG: 3, k: 6, f: 0, bias: true, dtype: 0 },
    { T: 4, D: 64, E: 12, G: 1, TG: 1, k: 3, f: 1, bias: false, dtype: 1 }, // softmax, no groups
    { T: 2, D: 64, E: 40, G: 4, TG: 4, k: 5, f: 0, bias: false, dtype: 1 }, // group max without bias
    { T: 37, D: 256, E: 64, G: 8, TG: 4, k: 6, f: 0, bias: true, dtype: 1 }, // logits on the tensor-core path
  ];
  for (const g of gates)
    test(`gate E=${g.E} groups=${g.G}/${g.TG} k=${g.k} ${g.f ? "softmax" : "sigmoid"}${g.bias ? " + bias" : ""}`, () => {
      const r = rng(g.E * 7 + g.k);
      const w = randomWeight(g.E, g.D, g.dtype, r, 1), x = randn(g.T * g.D, r, 2);
      const bias = g.bias ? randn(g.E, r, 0.1) : null;
      const ids = new Int32Array(g.T * g.k), wts = new Float32Array(g.T * g.k);
      expect(c.moe_gate(ids, wts, x, g.D, w.data, g.dtype, bias, g.T, g.D, g.E, g.G, g.TG, g.k, g.f, 1, 2.5, null)).toBe(0);
      const sc = new Scope(device);
      try {
        const dIds = sc.alloc(ids.byteLength), dW = sc.alloc(wts.byteLength);
        expect(s.moe_gate(dIds.ptr, dW.ptr, sc.put(x), g.D, sc.weight(w).data, g.dtype, bias ? sc.put(bias) : null,
          g.T, g.D, g.E, g.G, g.TG, g.k, g.f, 1, 2.5, null)).toBe(0);
        expect(Array.from(sc.get(dIds, new Int32Array(ids.length)))).toEqual(Array.from(ids));
        expectNear(sc.get(dW, new Float32Array(wts.length)), wts, "gate weights", 1e-6, 1e-5);
      } finally {
        sc.free();
      }
    });

  const experts = [
    { T: 5, D: 128, I: 96, E: 8, k: 3, dtype: 2, pad: 0 }, // decode-sized groups
    { T: 40, D: 160, I: 136, E: 4, k: 3, dtype: 2, pad: 1 }, // > 16 rows per expert: tensor cores
    { T: 24, D: 96, I: 64, E: 6, k: 2, dtype: 1, pad: 0 },
    { T: 6, D: 64, I: 48, E: 5, k: 2, dtype: 0, pad: 0 },
  ];
  for (const e of experts)
    test(`experts T=${e.T} D=${e.D} I=${e.I} E=${e.E} dtype ${e.dtype}${e.pad ? " unaligned" : ""}`, () => {
      const r = rng(e.T * 13 + e.dtype);
      // Route each token to k distinct experts, never to expert 1 (an empty group with no weights).
      const routes: number[][] = Array.from({ length: e.E }, () => []);
      const rws: number[][] = Array.from({ length: e.E }, () => []);
      for (let t = 0; t < e.T; t++) {
        const pool = Array.from({ length: e.E }, (_, i) => i).filter((i) => i !== 1);
        for (let j = 0; j < e.k; j++) {
          const [x] = pool.splice(Math.floor(r() * pool.length), 1);
          routes[x].push(t);
          rws[x].push(0.2 + r());
        }
      }
      const offsets = new Int32Array(e.E + 1);
      routes.forEach((rs, i) => (offsets[i + 1] = offsets[i] + rs.length));
      const rows = new Int32Array(routes.flat()), rw = new Float32Array(rws.flat());
      const W: (HostWeight | null)[][] = Array.from({ length: e.E }, (_, i) =>
        i === 1 ? [null, null, null] : [randomWeight(e.I, e.D, e.dtype, r, e.pad), randomWeight(e.I, e.D, e.dtype, r, e.pad), randomWeight(e.D, e.I, e.dtype, r, e.pad)]);
      const ldx = e.D + 4, ldo = e.D + 2;
      const x = randn(e.T * ldx, r), out0 = randn(e.T * ldo, r);
      const hostTable = (j: number, scale: boolean) =>
        new BigUint64Array(W.map((ws) => {
          const w = ws[j];
          const a = w && (scale ? w.scale : w.data);
          return a ? BigInt(ptr(a)) : 0n;
        }));
      const want = out0.slice();
      const sc8 = e.dtype === 2;
      expect(c.moe_experts(want, ldo, x, ldx, offsets, rows, rw, hostTable(0, false), sc8 ? hostTable(0, true) : null,
        hostTable(1, false), sc8 ? hostTable(1, true) : null, hostTable(2, false), sc8 ? hostTable(2, true) : null,
        e.dtype, e.E, e.D, e.I, null, null)).toBe(0);
      const sc = new Scope(device);
      try {
        const dev = W.map((ws) => ws.map((w) => (w ? sc.weight(w) : null)));
        const devTable = (j: number, scale: boolean) =>
          new BigUint64Array(dev.map((ws) => BigInt((scale ? ws[j]?.scale : ws[j]?.data) ?? 0)));
        const out = sc.buf(out0);
        expect(s.moe_experts(out.ptr, ldo, sc.put(x), ldx, offsets, sc.put(rows), sc.put(rw), devTable(0, false),
          sc8 ? devTable(0, true) : null, devTable(1, false), sc8 ? devTable(1, true) : null, devTable(2, false),
          sc8 ? devTable(2, true) : null, e.dtype, e.E, e.D, e.I, null, null)).toBe(0);
        expectNear(sc.get(out, new Float32Array(out0.length)), want, "experts", 2e-4, 1e-4);
      } finally {
        sc.free();
      }
    });

  test("experts: validation reads the host offsets as the CPU does", () => {
    const offsets = new Int32Array([0, 2, 1]), t = new BigUint64Array(2), x = new Float32Array(4);
    const a = c.moe_experts(x, 1, x, 1, offsets, null, null, t, null, t, null, t, null, 1, 2, 1, 1, null, null);
    const b = s.moe_experts(FAKE, 1, FAKE, 1, offsets, null, null, t, null, t, null, t, null, 1, 2, 1, 1, null, null);
    expect(b).toBe(a);
    expect(String(s.moe_last_error())).toBe(String(c.moe_last_error()));
  });
});
