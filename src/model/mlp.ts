// The SwiGLU feed-forward of dense layers and shared experts: w2(silu(w1 x) * w3 x).
import type { Checkpoint } from "../checkpoint/checkpoint.ts";
import type { ExpertGroups, ExpertWeights, Kernels } from "../kernels/kernels.ts";
import { Scratch } from "./scratch.ts";

export function loadExpertWeights(ck: Checkpoint, prefix: string, D: number, I: number): ExpertWeights {
  return {
    w1: ck.weight(`${prefix}.gate_proj.weight`, [I, D]),
    w3: ck.weight(`${prefix}.up_proj.weight`, [I, D]),
    w2: ck.weight(`${prefix}.down_proj.weight`, [D, I]),
  };
}

/** Up to this many tokens the MLP runs as one grouped-experts call (its own single expert, weight
 * 1): gate and up projections share one parallel pass and the down projection accumulates into
 * `out`, two joins instead of four kernel calls; bit-identical to the separate matmuls. */
const GROUPED_MAX_T = 8;

export class MLP {
  readonly w: ExpertWeights;
  private readonly asExperts: readonly ExpertWeights[];
  private readonly groups = new Map<number, ExpertGroups>();
  private readonly scratch = new Scratch();

  constructor(ck: Checkpoint, prefix: string, readonly D: number, readonly I: number, private readonly k: Kernels) {
    this.w = loadExpertWeights(ck, prefix, D, I);
    this.asExperts = [this.w];
  }

  /** out[T, D] = MLP(x[T, D]), or out += MLP(x) with `accumulate`. */
  forward(out: Float32Array, x: Float32Array, T: number, accumulate = false): void {
    const { k, D, I, w } = this;
    if (T <= GROUPED_MAX_T) {
      if (!accumulate) out.fill(0, 0, T * D);
      k.experts(out, x, this.allTokens(T), this.asExperts, T, D, I);
      return;
    }
    const g = this.scratch.f32("g", T * I), u = this.scratch.f32("u", T * I); // [T, I]
    k.linear(g, x, w.w1, T);
    k.linear(u, x, w.w3, T);
    k.siluMul(g, g, u, T, I);
    if (!accumulate) k.linear(out, g, w.w2, T, { K: I, N: D });
    else {
      const y = this.scratch.f32("y", T * D);
      k.linear(y, g, w.w2, T, { K: I, N: D });
      k.add(out, y, T, D);
    }
  }

  /** Every token to the one expert, weight 1. */
  private allTokens(T: number): ExpertGroups {
    let g = this.groups.get(T);
    if (!g) {
      g = { offsets: Int32Array.from([0, T]), rows: Int32Array.from({ length: T }, (_, i) => i), rw: new Float32Array(T).fill(1) };
      this.groups.set(T, g);
    }
    return g;
  }
}
