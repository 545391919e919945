// A set of routed experts of the MoE layers (all of them, or the slice one expert actor holds),
// run as grouped matmuls: each expert's weights are read once for all tokens sent to it.
import type { Checkpoint } from "../checkpoint/checkpoint.ts";
import type { ModelConfig } from "../config/model.ts";
import type { ExpertGroups, ExpertWeights, Kernels } from "../kernels/kernels.ts";
import { loadExpertWeights } from "./mlp.ts";

/** Rows of a token batch assigned to experts: row r goes to expert[r] with weight[r]. */
export interface Assignment {
  readonly token: Int32Array; // index into the batch's x
  readonly expert: Int32Array; // global expert id
  readonly weight: Float32Array;
}

export function groupByExpert(a: Assignment, E: number): ExpertGroups {
  const n = a.token.length;
  const offsets = new Int32Array(E + 1);
  for (let r = 0; r < n; r++) offsets[a.expert[r] + 1]++;
  for (let e = 0; e < E; e++) offsets[e + 1] += offsets[e];
  const fill = offsets.slice(0, E);
  const rows = new Int32Array(n), rw = new Float32Array(n);
  for (let r = 0; r < n; r++) {
    const at = fill[a.expert[r]]++;
    rows[at] = a.token[r];
    rw[at] = a.weight[r];
  }
  return { offsets, rows, rw };
}

export class ExpertSet {
  private readonly byLayer = new Map<number, (ExpertWeights | null)[]>();
  private readonly held: Uint8Array; // [n_routed_experts] 1 = held here

  /** Holds `experts` (global ids) of every MoE layer in `layers`; weights map lazily. */
  constructor(private readonly ck: Checkpoint, private readonly c: ModelConfig, private readonly k: Kernels,
              readonly layers: readonly number[], readonly experts: readonly number[]) {
    this.held = new Uint8Array(c.n_routed_experts);
    for (const e of experts) this.held[e] = 1;
  }

  get hiddenSize(): number {
    return this.c.hidden_size;
  }

  holds(layer: number, expert: number): boolean {
    return this.held[expert] === 1 && this.layers.includes(layer);
  }

  private weights(layer: number): (ExpertWeights | null)[] {
    let ws = this.byLayer.get(layer);
    if (!ws) {
      const { hidden_size: D, moe_intermediate_size: I, n_routed_experts: E } = this.c;
      ws = new Array<ExpertWeights | null>(E).fill(null);
      for (const e of this.experts) ws[e] = loadExpertWeights(this.ck, `model.layers.${layer}.mlp.experts.${e}`, D, I);
      this.byLayer.set(layer, ws);
    }
    return ws;
  }

  /** out[T, D] += sum over assigned rows of weight * Expert(x[token]) (out accumulates). */
  forward(out: Float32Array, x: Float32Array, T: number, layer: number, a: Assignment): void {
    if (!this.layers.includes(layer)) throw new Error(`layer ${layer} has no experts here`);
    for (let r = 0; r < a.expert.length; r++)
      if (this.held[a.expert[r]] !== 1) throw new Error(`expert ${a.expert[r]} of layer ${layer} is not held here`);
    const { hidden_size: D, moe_intermediate_size: I, n_routed_experts: E } = this.c;
    this.k.experts(out, x, groupByExpert(a, E), this.weights(layer), T, D, I);
  }
}
