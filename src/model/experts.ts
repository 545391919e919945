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
              readonly layers: readonly number[], experts: readonly number[]) {
    this.held = new Uint8Array(c.n_routed_experts);
    for (const e of experts) this.held[e] = 1;
  }

  get hiddenSize(): number {
    return this.c.hidden_size;
  }

  /** The experts held, ascending. */
  get experts(): number[] {
    const out: number[] = [];
    this.held.forEach((h, e) => h && out.push(e));
    return out;
  }

  holds(layer: number, expert: number): boolean {
    return this.held[expert] === 1 && this.layers.includes(layer);
  }

  /** Takes more experts while serving (online EPLB): their weights are read on first use. */
  hold(experts: readonly number[]): void {
    for (const e of experts) {
      if (!Number.isInteger(e) || e < 0 || e >= this.held.length) throw new Error(`expert ${e} is out of range (0-${this.held.length - 1})`);
      this.held[e] = 1;
    }
  }

  /** Gives experts up: their weights are no longer referenced (freed once nothing else holds them). */
  drop(experts: readonly number[]): void {
    for (const e of experts) this.held[e] = 0;
    for (const [layer, ws] of this.byLayer) {
      // A new array: the kernels cache pointer tables per weights array.
      if (experts.some((e) => ws[e])) this.byLayer.set(layer, ws.map((w, e) => (this.held[e] ? w : null)));
    }
  }

  /** The layer's weights: every held expert's on the layer's first use, one taken later on its own. */
  private weights(layer: number, a: Assignment): (ExpertWeights | null)[] {
    const { hidden_size: D, moe_intermediate_size: I, n_routed_experts: E } = this.c;
    let ws = this.byLayer.get(layer);
    if (ws && a.expert.every((e) => ws![e])) return ws;
    const load = ws ? [...new Set(a.expert)].filter((e) => !ws![e]) : this.experts;
    ws = ws ? [...ws] : new Array<ExpertWeights | null>(E).fill(null); // new array: see drop
    for (const e of load) ws[e] = loadExpertWeights(this.ck, `model.layers.${layer}.mlp.experts.${e}`, D, I);
    this.byLayer.set(layer, ws);
    return ws;
  }

  /** out[T, D] += sum over assigned rows of weight * Expert(x[token]) (out accumulates). */
  forward(out: Float32Array, x: Float32Array, T: number, layer: number, a: Assignment): void {
    if (!this.layers.includes(layer)) throw new Error(`layer ${layer} has no experts here`);
    for (let r = 0; r < a.expert.length; r++)
      if (this.held[a.expert[r]] !== 1) throw new Error(`expert ${a.expert[r]} of layer ${layer} is not held here`);
    const { hidden_size: D, moe_intermediate_size: I, n_routed_experts: E } = this.c;
    this.k.experts(out, x, groupByExpert(a, E), this.weights(layer, a), T, D, I);
  }
}
