// The routed half of a MoE layer in one place: gate, then experts, combined with the routing
// weights. Actors split exactly this between router and expert actors.
import type { Checkpoint } from "../checkpoint/checkpoint.ts";
import type { ModelConfig } from "../config/model.ts";
import type { Kernels } from "../kernels/kernels.ts";
import type { RoutedFFN } from "./block.ts";
import { type Assignment, ExpertSet } from "./experts.ts";
import { Gate, type Routing } from "./gate.ts";

export function moeLayers(c: ModelConfig): number[] {
  const out: number[] = [];
  for (let l = c.first_k_dense_replace; l < c.n_layers_total; l++) out.push(l);
  return out;
}

/** Every (token, expert) pair of a routing, as an assignment. */
export function assignAll(r: Routing): Assignment {
  const n = r.T * r.k;
  const token = new Int32Array(n);
  for (let i = 0; i < n; i++) token[i] = Math.floor(i / r.k);
  return { token, expert: r.ids, weight: r.weights };
}

export class LocalMoE {
  readonly gates = new Map<number, Gate>();
  readonly experts: ExpertSet;
  onRouting?: (layer: number, r: Routing) => void;

  constructor(ck: Checkpoint, private readonly c: ModelConfig, k: Kernels) {
    const layers = moeLayers(c).filter((l) => l < c.num_hidden_layers || ck.has(`model.layers.${l}.mlp.gate.weight`));
    for (const l of layers) this.gates.set(l, new Gate(ck, `model.layers.${l}`, c, k));
    this.experts = new ExpertSet(ck, c, k, layers, Array.from({ length: c.n_routed_experts }, (_, e) => e));
  }

  readonly routed: RoutedFFN = (layer, x, T) => {
    const gate = this.gates.get(layer);
    if (!gate) throw new Error(`no gate for layer ${layer}`);
    const r = gate.route(x, T);
    this.onRouting?.(layer, r);
    const out = new Float32Array(T * this.c.hidden_size);
    this.experts.forward(out, x, T, layer, assignAll(r));
    return out;
  };
}
