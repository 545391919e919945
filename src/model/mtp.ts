// Multi-token prediction (DeepSeek-V3 §2.2): from the main model's final hidden state h_i (after
// model.norm, as vLLM and SGLang feed it) and the embedding of token i+1, one more Block
// predicts token i+2: eh_proj(concat(enorm(Emb(t_{i+1})), hnorm(h_i))) -> Block -> shared_head.
import type { Checkpoint, Weight } from "../checkpoint/checkpoint.ts";
import type { ModelConfig } from "../config/model.ts";
import type { Kernels } from "../kernels/kernels.ts";
import { draftKernels } from "../kernels/draft.ts";
import { type ForwardBatch, selectRows } from "./batch.ts";
import { Block, type RoutedFFN } from "./block.ts";
import { type KvDtype, LatentCache } from "./kvcache.ts";
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
  private readonly dk: Kernels; // the kernels of drafting (int8 matmuls on the CPU)
  private readonly draftBlock: Block; // the same block over them

  constructor(ck: Checkpoint, readonly layer: number, private readonly c: ModelConfig, private readonly k: Kernels, invFreq: Float32Array) {
    const p = `model.layers.${layer}`, D = c.hidden_size, V = c.vocab_size;
    this.embed = ck.weight(`${p}.embed_tokens.weight`, [V, D]);
    this.enorm = ck.weight(`${p}.enorm.weight`, [D]);
    this.hnorm = ck.weight(`${p}.hnorm.weight`, [D]);
    this.ehProj = ck.weight(`${p}.eh_proj.weight`, [D, 2 * D]);
    this.block = new Block(ck, layer, c, k, invFreq);
    this.dk = draftKernels(k);
    this.draftBlock = this.dk === k ? this.block : new Block(ck, layer, c, this.dk, invFreq);
    this.norm = ck.weight(`${p}.shared_head.norm.weight`, [D]);
    this.head = ck.weight(`${p}.shared_head.head.weight`, [V, D]);
  }

  newCache(pages: number, pageSize: number, dtype: KvDtype = "f32"): LatentCache {
    return new LatentCache(pages, pageSize, this.c.kv_lora_rank, this.c.qk_rope_head_dim, dtype);
  }

  /** For each row r of `rows`: logits [R, V] predicting token i+2 (i = rows[r]) and the normalized
   * hidden state [R, D] the next chained draft starts from. b.tokens are the tokens t_{i+1}, h the
   * main model's normalized hidden states [T, D] of positions i. Rows not in `rows` only leave
   * their keys and values in the cache: nothing else of theirs is ever read, so the block runs
   * its queries, attention and FFN over the selected rows alone (a decode step's accepted draft,
   * or a whole prompt, costs one kv projection per row). `draft`: the results only pick draft
   * tokens, so the block's own matmuls and the head run on the draft kernels (kernels/draft.ts:
   * int8 on the CPU; the main model verifies every draft exactly, so only the acceptance can
   * change). Both results are this module's scratch: valid until the next call. */
  async forward(b: ForwardBatch, h: Float32Array, cache: LatentCache, routed: RoutedFFN, rows: Int32Array,
                impl: AttnImpl = "auto", draft = false): Promise<{ logits: Float32Array; hidden: Float32Array }> {
    const { c, scratch: sc } = this, k = draft ? this.dk : this.k, block = draft ? this.draftBlock : this.block;
    const T = b.T, D = c.hidden_size, R = rows.length, eps = c.rms_norm_eps;
    const x = sc.f32("x", T * D); // Emb(t_{i+1}), then the residual stream of the MTP block
    k.embed(x, b.tokens, this.embed, T);
    const cat = sc.f32("cat", T * 2 * D); // [T, 2D] = enorm(emb) | hnorm(h)
    k.rmsnorm(cat, x, this.enorm, T, D, eps, { ldo: 2 * D });
    k.rmsnorm(cat.subarray(D), h, this.hnorm, T, D, eps, { ldo: 2 * D });
    k.linear(x, cat, this.ehProj, T);
    const hn = sc.f32("hn", R * D); // the selected rows' residual stream, then shared_head.norm of it
    if (R === T && rows.every((r, i) => r === i)) {
      await block.forward(x, b, cache, routed, impl);
      hn.set(x.subarray(0, T * D));
    } else {
      block.writeLatents(x, b, cache);
      if (R === 0) return { logits: sc.f32("logits", 0), hidden: hn };
      for (let r = 0; r < R; r++) hn.set(x.subarray(rows[r] * D, rows[r] * D + D), r * D);
      await block.forward(hn, selectRows(b, rows), cache, routed, impl, undefined, true);
    }
    const logits = sc.f32("logits", R * c.vocab_size);
    k.rmsnorm(hn, hn, this.norm, R, D, eps);
    k.linear(logits, hn, this.head, R);
    return { logits, hidden: hn };
  }
}
