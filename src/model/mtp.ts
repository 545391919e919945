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
import { Scratch } from "./scratch.ts";

export class MTP {
  readonly embed: Weight;
  readonly enorm: Weight;
  readonly hnorm: Weight;
  readonly ehProj: Weight;
  readonly block: Block;
  readonly norm: Weight;
  readonly head: Weight;
  private readonly scratch = new Scratch();

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

  /** For each row r of `rows`: logits [R, V] predicting token i+2 (i = rows[r]) and the normalized
   * hidden state [R, D] the next chained draft starts from. b.tokens are the tokens t_{i+1}, h the
   * main model's normalized hidden states [T, D] of positions i. Both results are this module's
   * scratch: valid until the next call. */
  async forward(b: ForwardBatch, h: Float32Array, cache: LatentCache, routed: RoutedFFN, rows: Int32Array,
                impl: AttnImpl = "auto"): Promise<{ logits: Float32Array; hidden: Float32Array }> {
    const { k, c, scratch: sc } = this;
    const T = b.T, D = c.hidden_size, R = rows.length, eps = c.rms_norm_eps;
    const x = sc.f32("x", T * D); // Emb(t_{i+1}), then the residual stream of the MTP block
    k.embed(x, b.tokens, this.embed, T);
    const cat = sc.f32("cat", T * 2 * D); // [T, 2D] = enorm(emb) | hnorm(h)
    k.rmsnorm(cat, x, this.enorm, T, D, eps, { ldo: 2 * D });
    k.rmsnorm(cat.subarray(D), h, this.hnorm, T, D, eps, { ldo: 2 * D });
    k.linear(x, cat, this.ehProj, T);
    await this.block.forward(x, b, cache, this.routedRows(routed, rows, T), impl);
    const hn = sc.f32("hn", R * D); // shared_head.norm of the selected rows only
    for (let r = 0; r < R; r++) hn.set(x.subarray(rows[r] * D, rows[r] * D + D), r * D);
    const logits = sc.f32("logits", R * c.vocab_size);
    if (R === 0) return { logits, hidden: hn };
    k.rmsnorm(hn, hn, this.norm, R, D, eps);
    k.linear(logits, hn, this.head, R);
    return { logits, hidden: hn };
  }

  /** The routed experts for the selected rows only. The block's other rows matter only through
   * the keys and values they leave in the cache, written before the FFN, so their FFN output
   * (zero here) is never read: a decode step's accepted draft costs no expert work. */
  private routedRows(routed: RoutedFFN, rows: Int32Array, T: number): RoutedFFN {
    const R = rows.length, D = this.c.hidden_size, sc = this.scratch;
    if (R === T) return routed;
    return async (layer, x) => {
      const y = sc.f32("routedOut", T * D).fill(0);
      if (R === 0) return y;
      const xs = sc.f32("routedIn", R * D);
      for (let r = 0; r < R; r++) xs.set(x.subarray(rows[r] * D, rows[r] * D + D), r * D);
      const ys = await routed(layer, xs, R);
      for (let r = 0; r < R; r++) y.set(ys.subarray(r * D, r * D + D), rows[r] * D);
      return y;
    };
  }
}
