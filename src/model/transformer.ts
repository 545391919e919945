// The attention side of the whole model (embedding -> Blocks -> final norm -> head), in paper
// order. Routed experts are reached through a RoutedFFN, so the same code runs with the experts
// in this thread (LocalMoE) or behind router and expert actors.
import type { Checkpoint, Weight } from "../checkpoint/checkpoint.ts";
import type { ModelConfig } from "../config/model.ts";
import type { Kernels } from "../kernels/kernels.ts";
import type { ForwardBatch } from "./batch.ts";
import { Block, type RoutedFFN, type Trace } from "./block.ts";
import { type KvDtype, LatentCache } from "./kvcache.ts";
import type { AttnImpl } from "./mla.ts";
import { ropeInvFreq } from "./rope.ts";

export interface ForwardOptions {
  impl?: AttnImpl;
  /** Rows whose logits are computed (default: the last row of each sequence). */
  logitRows?: Int32Array;
  trace?: Trace;
  /** Keep the final hidden states (after model.norm) of every row, e.g. for MTP. */
  keepHidden?: boolean;
}

export interface ForwardResult {
  logits: Float32Array; // [rows, vocab]
  rows: Int32Array;
  hidden: Float32Array | null; // [T, D] after model.norm
  prenorm: Float32Array | null; // [T, D] before model.norm
}

export class Transformer {
  readonly embed: Weight;
  readonly blocks: Block[];
  readonly norm: Weight;
  readonly head: Weight;
  readonly invFreq: Float32Array;

  constructor(ck: Checkpoint, readonly c: ModelConfig, private readonly k: Kernels) {
    const D = c.hidden_size, V = c.vocab_size;
    this.invFreq = ropeInvFreq(c);
    this.embed = ck.weight("model.embed_tokens.weight", [V, D]);
    this.blocks = Array.from({ length: c.num_hidden_layers }, (_, i) => new Block(ck, i, c, k, this.invFreq));
    this.norm = ck.weight("model.norm.weight", [D]);
    this.head = ck.weight("lm_head.weight", [V, D]);
  }

  newCaches(pages: number, pageSize: number, dtype: KvDtype = "f32"): LatentCache[] {
    return this.blocks.map(() => new LatentCache(pages, pageSize, this.c.kv_lora_rank, this.c.qk_rope_head_dim, dtype));
  }

  async forward(b: ForwardBatch, caches: readonly LatentCache[], routed: RoutedFFN, o: ForwardOptions = {}): Promise<ForwardResult> {
    const { k, c } = this;
    const D = c.hidden_size, T = b.T;
    const h = new Float32Array(T * D); // residual stream [T, D]
    k.embed(h, b.tokens, this.embed, T);
    for (const blk of this.blocks) await blk.forward(h, b, caches[blk.layer], routed, o.impl ?? "auto", o.trace);
    const rows = o.logitRows ?? lastRows(b);
    const hn = new Float32Array(o.keepHidden ? T * D : rows.length * D);
    if (o.keepHidden) k.rmsnorm(hn, h, this.norm, T, D, c.rms_norm_eps);
    else for (let r = 0; r < rows.length; r++) k.rmsnorm(hn.subarray(r * D), h.subarray(rows[r] * D), this.norm, 1, D, c.rms_norm_eps);
    const logits = this.logits(o.keepHidden ? gatherRows(hn, rows, D) : hn, rows.length);
    return { logits, rows, hidden: o.keepHidden ? hn : null, prenorm: o.keepHidden ? h : null };
  }

  /** lm_head over normalized hidden rows [R, D]. */
  logits(hn: Float32Array, R: number): Float32Array {
    const out = new Float32Array(R * this.c.vocab_size);
    if (R > 0) this.k.linear(out, hn, this.head, R);
    return out;
  }
}

export function lastRows(b: ForwardBatch): Int32Array {
  const rows = new Int32Array(b.S);
  for (let s = 0; s < b.S; s++) rows[s] = b.cuQ[s + 1] - 1;
  return rows;
}

export function gatherRows(x: Float32Array, rows: Int32Array, D: number): Float32Array {
  const out = new Float32Array(rows.length * D);
  for (let r = 0; r < rows.length; r++) out.set(x.subarray(rows[r] * D, rows[r] * D + D), r * D);
  return out;
}
