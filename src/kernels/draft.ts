// Kernels for a module that only drafts (the MTP block and head during speculative decoding):
// its matmuls of a few rows run as int8 GEMVs (q8.ts), about 3x faster than the exact FP8/BF16
// kernels on the CPU. Drafts only propose tokens; the main model verifies every one exactly with
// the exact kernels, so the output never changes, only (slightly) which drafts get accepted.
// Everything else, and every call these do not cover, goes to the exact kernels.
// MOE_MTP_DRAFT=exact turns this off (then drafts are exactly the MTP module's argmax).
import type { Weight } from "../checkpoint/checkpoint.ts";
import type { ExpertWeights, Kernels } from "./kernels.ts";
import { Q8Experts, Q8Matrix } from "./q8.ts";

/** Calls of more rows (a prompt chunk writing its latents) stay on the exact kernels, which tile
 * many rows better than a GEMV does. */
const MAX_ROWS = 8;

export function draftKernels(k: Kernels): Kernels {
  if (k.backend !== "cpu" || process.env.MOE_MTP_DRAFT === "exact") return k;
  const matrices = new WeakMap<Weight, Q8Matrix>(); // int8 copies, made on first use
  const expertSets = new WeakMap<readonly (ExpertWeights | null)[], Q8Experts>();
  return {
    ...k,
    linear(out, x, w, T, o = {}) {
      const plain = o.ldo === undefined && o.ldx === undefined && !o.row0 && o.N === undefined && o.K === undefined;
      if (!plain || T > MAX_ROWS || w.shape.length !== 2) return k.linear(out, x, w, T, o);
      let m = matrices.get(w);
      if (!m) matrices.set(w, (m = Q8Matrix.quantize(w)));
      m.linear(out, x, T);
    },
    /** Routed experts, and dense MLPs or shared experts (one expert over every row): out += ... */
    experts(out, x, groups, experts, T, D, I) {
      if (T > MAX_ROWS) return k.experts(out, x, groups, experts, T, D, I);
      let q = expertSets.get(experts);
      if (!q) expertSets.set(experts, (q = new Q8Experts(experts)));
      q.forward(out, x, groups, T, D, I);
    },
  };
}
