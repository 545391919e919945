// What a model's weights amount to, for scripts/bench.ts: its parameters and the bytes one
// decoded token streams (the figure memory bandwidth is measured against).
import type { Checkpoint } from "../../src/checkpoint/checkpoint.ts";
import { DTYPE_BYTES } from "../../src/checkpoint/safetensors.ts";

/** Parameters of the model, each counted once (block scales and the MTP layer's copies of the
 * embedding and head are not parameters of their own). */
export function paramCount(ck: Checkpoint): number {
  let n = 0;
  for (const name of ck.names()) {
    if (name.endsWith("_scale_inv") || (name.startsWith("model.layers.") && /\.(embed_tokens|shared_head\.head)\.weight$/.test(name))) continue;
    n += ck.info(name).shape.reduce((a, b) => a * b, 1);
  }
  return n;
}

/** Bytes of weights one decoded token reads: every dense tensor of a layer, the active experts only. */
export function bytesPerToken(ck: Checkpoint): { total: number; parts: Record<string, number> } {
  const c = ck.config;
  const parts: Record<string, number> = { attention: 0, dense: 0, shared: 0, gate: 0, experts: 0, head: 0 };
  const size = (n: string) => { const i = ck.info(n); return (i.end - i.begin) || i.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[i.dtype]; };
  const perExpert = new Map<number, number>(); // layer -> summed bytes of all its experts
  for (const n of ck.names()) {
    const m = /^model\.layers\.(\d+)\.(.*)$/.exec(n);
    if (!m) { if (n.startsWith("lm_head") || n === "model.norm.weight") parts.head += size(n); continue; }
    const layer = Number(m[1]), rest = m[2];
    if (layer >= c.num_hidden_layers) continue; // MTP layers do not run in plain decode
    if (rest.startsWith("mlp.experts.")) perExpert.set(layer, (perExpert.get(layer) ?? 0) + size(n));
    else if (rest.startsWith("mlp.shared_experts.")) parts.shared += size(n);
    else if (rest.startsWith("mlp.gate.")) parts.gate += size(n);
    else if (rest.startsWith("mlp.")) parts.dense += size(n);
    else parts.attention += size(n);
  }
  for (const total of perExpert.values()) parts.experts += (total / c.n_routed_experts) * c.num_experts_per_tok;
  parts.embedding_row = c.hidden_size * DTYPE_BYTES[ck.info("model.embed_tokens.weight").dtype];
  return { total: Object.values(parts).reduce((a, b) => a + b, 0), parts };
}
