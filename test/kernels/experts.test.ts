// moe_experts (grouped SwiGLU) on every ISA path against a float64 JS reference built from the
// model.py definition: out[tok] += rw * W2 (silu(W1 x) * (W3 x)), experts with no tokens (and
// NULL weights), D and I not multiples of 16/128 (partial F8 blocks), T = 1 and T > tile.
// Tolerance: |out - ref| <= 2e-6 * max|ref| + 1e-5 * |ref|: random F8 codes span 2^-9..448, so
// outputs are sums of large terms that cancel, and the fp32 error follows the terms' scale.
import { describe, test } from "bun:test";
import { ptr } from "bun:ffi";
import { check, DTYPES, expectClose, ISAS, k, randF32, randWeight, refLinear, rng, type TestWeight, useIsa } from "./helpers.ts";

interface Case { T: number; D: number; I: number; E: number; topk: number }
const CASES: Case[] = [
  { T: 1, D: 64, I: 32, E: 8, topk: 3 },
  { T: 5, D: 130, I: 70, E: 6, topk: 2 },
  { T: 23, D: 96, I: 144, E: 4, topk: 3 }, // > 8 tokens per expert: the 4x6 tile path
];

function table(ws: (TestWeight | null)[], pick: (w: TestWeight) => Uint8Array | Float32Array | null): BigUint64Array {
  return BigUint64Array.from(ws, (w) => { const a = w ? pick(w) : null; return a ? BigInt(ptr(a)) : 0n; });
}

describe("moe_experts", () => {
  for (const isa of ISAS)
    for (const dtype of DTYPES)
      test(`${isa} dtype ${dtype}`, () => {
        useIsa(isa);
        for (const { T, D, I, E, topk } of CASES) {
          const r = rng(T + D + I);
          // Each token picks topk distinct experts; expert E-1 never gets a token (NULL weights).
          const pairs: { tok: number; e: number; w: number }[] = [];
          for (let t = 0; t < T; t++) {
            const chosen = new Set<number>();
            while (chosen.size < topk) chosen.add(Math.floor(((r() + 1) / 2) * (E - 1)));
            for (const e of chosen) pairs.push({ tok: t, e, w: (r() + 1.5) / 2 });
          }
          pairs.sort((a, b) => a.e - b.e);
          const offsets = new Int32Array(E + 1);
          for (const p of pairs) offsets[p.e + 1]++;
          for (let e = 0; e < E; e++) offsets[e + 1] += offsets[e];
          const rows = Int32Array.from(pairs, (p) => p.tok), rw = Float32Array.from(pairs, (p) => p.w);
          const used = (e: number) => offsets[e + 1] > offsets[e];
          const w1 = Array.from({ length: E }, (_, e) => (used(e) ? randWeight(dtype, I, D, 10 * e + 1, e % 3) : null));
          const w3 = Array.from({ length: E }, (_, e) => (used(e) ? randWeight(dtype, I, D, 10 * e + 2, 1) : null));
          const w2 = Array.from({ length: E }, (_, e) => (used(e) ? randWeight(dtype, D, I, 10 * e + 3, 2) : null));
          const x = randF32(T * D, 99);
          const out = randF32(T * D, 98); // accumulates
          const ref = Float64Array.from(out);
          for (let e = 0; e < E; e++)
            for (let i = offsets[e]; i < offsets[e + 1]; i++) {
              const xt = x.subarray(rows[i] * D, rows[i] * D + D);
              const g = refLinear(xt, D, w1[e]!, 0, 1, I, D), u = refLinear(xt, D, w3[e]!, 0, 1, I, D);
              const h = Float32Array.from(g, (v, j) => (v / (1 + Math.exp(-v))) * u[j]);
              const y = refLinear(h, I, w2[e]!, 0, 1, D, I);
              for (let d = 0; d < D; d++) ref[rows[i] * D + d] += rw[i] * y[d];
            }
          check("moe_experts", k.moe_experts(out, D, x, D, offsets, rows, rw,
            table(w1, (w) => w.bytes), table(w1, (w) => w.scale), table(w3, (w) => w.bytes), table(w3, (w) => w.scale),
            table(w2, (w) => w.bytes), table(w2, (w) => w.scale), dtype, E, D, I, null, null));
          const scale = ref.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
          expectClose(out, ref, 2e-6 * scale, 1e-5, `${isa} dtype ${dtype} T${T} D${D} I${I}`);
        }
      });
});
