// Which of a DeepSeek-V3 checkpoint's tensors each actor reads, so that an actor can have its
// own weights read ahead at activation (Checkpoint.prefetch: a few reads in flight) instead of
// one tensor at a time as the first steps ask for them. Names are the checkpoint's own
// (model.layers.L.mlp.experts.E.*, model.layers.L.mlp.gate.*); a predicate that accepts too
// little only leaves the rest to the lazy reads, never changes what is computed.
import type { ModelConfig } from "../config/model.ts";

const EXPERT = /^model\.layers\.(\d+)\.mlp\.experts\.(\d+)\./;
const LAYER = /^model\.layers\.(\d+)\./;

/** The routed experts `experts` of every MoE layer (weights and their scales), the MTP
 * layers' only when they run. */
export function expertTensors(c: ModelConfig, experts: readonly number[], mtp: boolean): (name: string) => boolean {
  const E = new Set(experts), end = c.num_hidden_layers + (mtp ? c.num_nextn_predict_layers : 0);
  return (name) => {
    const m = EXPERT.exec(name);
    return m !== null && Number(m[1]) >= c.first_k_dense_replace && Number(m[1]) < end && E.has(Number(m[2]));
  };
}

/** What an attention actor holds: every tensor but the routed experts and the gates, the MTP
 * layers only when it runs them. */
export function attentionTensors(c: ModelConfig, mtp: boolean): (name: string) => boolean {
  return (name) => {
    if (EXPERT.test(name) || name.includes(".mlp.gate.")) return false;
    const m = LAYER.exec(name);
    return m === null || Number(m[1]) < c.num_hidden_layers || (mtp && c.num_nextn_predict_layers > 0);
  };
}
