// Kernels for a module that only drafts (the MTP block and head during speculative decoding):
// its matmuls of a few rows run as int8 GEMVs (q8.ts), about 3x faster than the exact FP8/BF16
// kernels on the CPU. Drafts only propose tokens; the main model verifies every one exactly with
// the exact kernels, so the output never changes, only (slightly) which drafts get accepted.
// Everything else, and every call these do not cover, goes to the exact kernels.
// MOE_MTP_DRAFT=exact turns this off (then drafts are exactly the MTP module's argmax).
import type { Weight } from "../checkpoint/checkpoint.ts";
import type { ExpertWeights, Kernels } from "./kernels.ts";
import { Q8Matrix } from "./q8.ts";

/** Calls of more rows (a prompt chunk writing its latents) stay on the exact kernels, which tile
 * many rows better than a GEMV does. */
const MAX_ROWS = 8;

export function draftKernels(k: Kernels): Kernels {
  if (k.backend !== "cpu" || process.env.MOE_MTP_DRAFT === "exact") return k;
  const quantized = new WeakMap<Weight, Q8Matrix>(); // int8 copies, made on first use
  const q8 = (w: Weight): Q8Matrix => {
    let m = quantized.get(w);
    if (!m) quantized.set(w, (m = Q8Matrix.quantize(w)));
    return m;
  };
  const buf = { g: new Float32Array(0), u: new Float32Array(0), y: new Float32Array(0) };
  const grow = (name: keyof typeof buf, n: number) => (buf[name].length >= n ? buf[name] : (buf[name] = new Float32Array(n)));
  return {
    ...k,
    linear(out, x, w, T, o = {}) {
      const plain = o.ldo === undefined && o.ldx === undefined && !o.row0 && o.N === undefined && o.K === undefined;
      if (!plain || T > MAX_ROWS || w.shape.length !== 2) return k.linear(out, x, w, T, o);
      q8(w).linear(out, x, T);
    },
    /** One expert over every row (a dense MLP or shared experts): out += w2(silu(w1 x) * w3 x). */
    experts(out, x, groups, experts, T, D, I) {
      const e = experts.length === 1 ? (experts[0] as ExpertWeights | null) : null;
      const all = groups.offsets.length === 2 && groups.offsets[1] === T && groups.rows.every((r, i) => r === i) && groups.rw.every((v) => v === 1);
      if (!e || !all || T > MAX_ROWS) return k.experts(out, x, groups, experts, T, D, I);
      const g = grow("g", T * I), u = grow("u", T * I), y = grow("y", T * D);
      q8(e.w1).linear(g, x, T);
      q8(e.w3).linear(u, x, T);
      k.siluMul(g, g, u, T, I);
      q8(e.w2).linear(y, g, T);
      k.add(out, y, T, D);
    },
  };
}
