// Multi-token prediction (DeepSeek-V3 §2.2): from the main model's final hidden state h_i (after
// model.norm, as vLLM and SGLang feed it) and the embedding of token i+1, one more Block
// predicts token i+2: eh_proj(concat(enorm(Emb(t_{i+1})), hnorm(h_i))) -> Block -> shared_head.
import type { Checkpoint, Weight } from "../checkpoint/checkpoint.ts";
import type { ModelConfig } from "../config/model.ts";
import type { Kernels } from "../kernels/kernels.ts";
import type { ForwardBatch } from "./batch.ts";
import { Block, type RoutedFFN } from "./block.ts";
import { LatentCache } from "./kvcache.ts";
import type { AttnImpl } from "./mla.ts";

export class MTP {
  readonly embed: Weight;
  readonly enorm: Weight;
  readonly hnorm: Weight;
  readonly ehProj: Weight;
  readonly block: Block;
  readonly norm: Weight;
  readonly head: Weight;

  constructor(ck: Checkpoint, readonly layer: number, private readonly c: ModelConfig, private readonly k: Kernels, invFreq: Float32Array) {
    const p = `model.layers.${layer}`, D = c.hidden_size, V = c.vocab_size;
    this.embed = ck.weight(`${p}.embed_tokens.weight`, [V, D]);
    this.enorm = ck.weight(`${p}.enorm.weight`, [D]);
    this.hnorm = ck.weight(`${p}.hnorm.weight`, [D]);
    this.ehProj = ck.weight(`${p}.eh_proj.weight`, [D, 2 * D]);
    this.block = new Block(ck, layer, c, k, invFreq);
    this.norm = ck.weight(`${p}.shared_head.norm.weight`, [D]);
    this.head = ck.weight(`${p}.shared_head.head.weight`, [V, D]);
  }

  newCache(pages: number, pageSize: number): LatentCache {
    return new LatentCache(pages, pageSize, this.c.kv_lora_rank, this.c.qk_rope_head_dim);
  }

  /** Logits [rows, V] predicting token i+2 for each row i; b.tokens are the tokens t_{i+1}, h the
   * main model's normalized hidden states [T, D] of positions i. */
  async forward(b: ForwardBatch, h: Float32Array, cache: LatentCache, routed: RoutedFFN, rows: Int32Array,
                impl: AttnImpl = "auto"): Promise<{ logits: Float32Array; hidden: Float32Array; prenorm: Float32Array }> {
    const { k, c } = this;
    const T = b.T, D = c.hidden_size, eps = c.rms_norm_eps;
    const e = new Float32Array(T * D);
    k.embed(e, b.tokens, this.embed, T);
    const cat = new Float32Array(T * 2 * D); // [T, 2D] = enorm(emb) | hnorm(h)
    k.rmsnorm(cat, e, this.enorm, T, D, eps, { ldo: 2 * D });
    k.rmsnorm(cat.subarray(D), h, this.hnorm, T, D, eps, { ldo: 2 * D });
    const x = new Float32Array(T * D); // residual stream of the MTP block
    k.linear(x, cat, this.ehProj, T);
    await this.block.forward(x, b, cache, routed, impl);
    const hn = new Float32Array(T * D);
    k.rmsnorm(hn, x, this.norm, T, D, eps);
    const sel = new Float32Array(rows.length * D);
    for (let r = 0; r < rows.length; r++) sel.set(hn.subarray(rows[r] * D, rows[r] * D + D), r * D);
    const logits = new Float32Array(rows.length * c.vocab_size);
    if (rows.length) k.linear(logits, sel, this.head, rows.length);
    return { logits, hidden: hn, prenorm: x };
  }
}
