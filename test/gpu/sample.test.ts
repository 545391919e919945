// Sampling kernels on the device against the CPU library: argmax (first maximum), log_softmax,
// and draws under every filter. The device finds ranks by radix select instead of sorting, so
// the same inputs must give the same id (a draw within ~1e-12 of a bucket edge could differ).
import { expect, test } from "bun:test";
import { FAKE, Scope, cpu, expectNear, forTargets, randn, rng } from "./harness.ts";

forTargets("sampling kernels", ({ device }) => {
  const s = device.symbols, c = cpu();

  test("argmax and log_softmax", () => {
    const sc = new Scope(device);
    try {
      const r = rng(61), T = 3, V = 1000, l = randn(T * V, r, 3);
      l[V + 10] = l[V + 500] = 50; // a tie: the first index wins
      const ids = new Int32Array(T), ls = new Float32Array(T * V);
      expect(c.moe_argmax(ids, l, T, V, null)).toBe(0);
      expect(c.moe_log_softmax(ls, l, T, V, null)).toBe(0);
      const dl = sc.buf(l), di = sc.alloc(4 * T);
      expect(s.moe_argmax(di.ptr, dl.ptr, T, V, null)).toBe(0);
      expect(Array.from(sc.get(di, new Int32Array(T)))).toEqual(Array.from(ids));
      expect(s.moe_log_softmax(dl.ptr, dl.ptr, T, V, null)).toBe(0); // in place
      expectNear(sc.get(dl, new Float32Array(T * V)), ls, "log_softmax", 1e-5, 1e-6);
    } finally {
      sc.free();
    }
  });

  const filters = [
    { temp: 1, topK: 0, topP: 1, minP: 0 },
    { temp: 0.7, topK: 40, topP: 1, minP: 0 },
    { temp: 1.3, topK: 0, topP: 0.9, minP: 0 },
    { temp: 1, topK: 0, topP: 1, minP: 0.05 },
    { temp: 0.9, topK: 100, topP: 0.8, minP: 0.02 },
    { temp: 1, topK: 0, topP: 0, minP: 0 }, // top_p 0 keeps the best
  ];
  for (const f of filters)
    test(`sample T=${f.temp} top_k=${f.topK} top_p=${f.topP} min_p=${f.minP}`, () => {
      const sc = new Scope(device);
      try {
        const r = rng(71 + f.topK), V = 3000, l = randn(V, r, 2);
        for (let i = 0; i < 20; i++) l[Math.floor(r() * V)] = 4; // ties in probability: id order decides
        const dl = sc.put(l), did = sc.alloc(4), scratch = sc.alloc(8 * V), one = new Int32Array(1);
        for (const u of [0, 0.013, 0.25, 0.5, 0.77, 0.9, 0.999]) {
          expect(c.moe_sample(one, l, V, f.temp, f.topK, f.topP, f.minP, u, null, null)).toBe(0);
          expect(s.moe_sample(did.ptr, dl, V, f.temp, f.topK, f.topP, f.minP, u, u < 0.5 ? scratch.ptr : null, null)).toBe(0);
          expect([u, sc.get(did, new Int32Array(1))[0]]).toEqual([u, one[0]]);
        }
      } finally {
        sc.free();
      }
    });

  test("sample validation matches the CPU library", () => {
    const l = new Float32Array(4), one = new Int32Array(1);
    for (const [t, u] of [[0, 0.5], [1, 1], [1, -0.1]])
      expect(s.moe_sample(FAKE, FAKE, 4, t, 0, 1, 0, u, null, null)).toBe(c.moe_sample(one, l, 4, t, 0, 1, 0, u, null, null));
  });
});
