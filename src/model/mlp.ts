// The SwiGLU feed-forward of dense layers and shared experts: w2(silu(w1 x) * w3 x).
import type { Checkpoint } from "../checkpoint/checkpoint.ts";
import type { ExpertWeights, Kernels } from "../kernels/kernels.ts";
import { Scratch } from "./scratch.ts";

export function loadExpertWeights(ck: Checkpoint, prefix: string, D: number, I: number): ExpertWeights {
  return {
    w1: ck.weight(`${prefix}.gate_proj.weight`, [I, D]),
    w3: ck.weight(`${prefix}.up_proj.weight`, [I, D]),
    w2: ck.weight(`${prefix}.down_proj.weight`, [D, I]),
  };
}

export class MLP {
  readonly w: ExpertWeights;
  private readonly scratch = new Scratch();

  constructor(ck: Checkpoint, prefix: string, readonly D: number, readonly I: number, private readonly k: Kernels) {
    this.w = loadExpertWeights(ck, prefix, D, I);
  }

  /** out[T, D] = MLP(x[T, D]) */
  forward(out: Float32Array, x: Float32Array, T: number): void {
    const { k, D, I, w } = this;
    const g = this.scratch.f32("g", T * I), u = this.scratch.f32("u", T * I); // [T, I]
    k.linear(g, x, w.w1, T);
    k.linear(u, x, w.w3, T);
    k.siluMul(g, g, u, T, I);
    k.linear(out, g, w.w2, T, { K: I, N: D });
  }
}
