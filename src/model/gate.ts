// The MoE gate of one layer (DeepSeek-V3 §2.1.2, noaux_tc): chooses num_experts_per_tok experts
// per token and their weights. The math is in the moe_gate kernel; this owns the weights.
import type { Checkpoint, Weight } from "../checkpoint/checkpoint.ts";
import type { ModelConfig } from "../config/model.ts";
import type { GateShape, Kernels } from "../kernels/kernels.ts";

export interface Routing {
  readonly T: number;
  readonly k: number;
  readonly ids: Int32Array; // [T, k] in descending biased score
  readonly weights: Float32Array; // [T, k]
}

export class Gate {
  private readonly w: Weight;
  private readonly bias: Float32Array | null;
  private readonly g: GateShape;

  constructor(ck: Checkpoint, prefix: string, c: ModelConfig, private readonly k: Kernels) {
    const E = c.n_routed_experts, D = c.hidden_size;
    this.w = ck.weight(`${prefix}.mlp.gate.weight`, [E, D]);
    this.bias = c.topk_method === "noaux_tc" ? ck.f32(`${prefix}.mlp.gate.e_score_correction_bias`, [E]) : null;
    const grouped = c.topk_method !== "greedy";
    this.g = {
      D, E, k: c.num_experts_per_tok,
      nGroup: grouped ? c.n_group : 1, topkGroup: grouped ? c.topk_group : 1,
      scoreFunc: c.scoring_func,
      // model.py always renormalizes sigmoid scores; HF follows norm_topk_prob (true in V3).
      normTopk: c.scoring_func === "sigmoid" ? true : c.norm_topk_prob,
      routeScale: c.routed_scaling_factor,
    };
  }

  route(x: Float32Array, T: number): Routing {
    const ids = new Int32Array(T * this.g.k), weights = new Float32Array(T * this.g.k);
    this.k.gate(ids, weights, x, this.w, this.bias, T, this.g);
    return { T, k: this.g.k, ids, weights };
  }
}
