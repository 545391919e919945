// The attention side of one Block (DeepSeek-V3 §2): x += MLA(norm(x)); x += FFN(norm(x)), where
// FFN is a dense MLP, or shared experts plus the routed experts that live elsewhere (RoutedFFN).
import type { Checkpoint, Weight } from "../checkpoint/checkpoint.ts";
import type { ModelConfig } from "../config/model.ts";
import type { Kernels } from "../kernels/kernels.ts";
import type { ForwardBatch } from "./batch.ts";
import type { LatentCache } from "./kvcache.ts";
import { type AttnImpl, MLA } from "./mla.ts";
import { MLP } from "./mlp.ts";
import { Scratch } from "./scratch.ts";

/** The routed experts' weighted sum for a layer: [T, D] from the normalized input x [T, D]. */
export type RoutedFFN = (layer: number, x: Float32Array, T: number) => Float32Array | Promise<Float32Array>;

/** Per-layer activations, for debugging against the reference. */
export type Trace = (layer: number, what: "attn_out" | "ffn_out" | "out", v: Float32Array) => void;

export class Block {
  readonly attnNorm: Weight;
  readonly ffnNorm: Weight;
  readonly attn: MLA;
  readonly dense: MLP | null;
  readonly shared: MLP | null;
  readonly moe: boolean;
  private readonly scratch = new Scratch();

  constructor(ck: Checkpoint, readonly layer: number, private readonly c: ModelConfig, private readonly k: Kernels, invFreq: Float32Array) {
    const p = `model.layers.${layer}`, D = c.hidden_size;
    this.attnNorm = ck.weight(`${p}.input_layernorm.weight`, [D]);
    this.ffnNorm = ck.weight(`${p}.post_attention_layernorm.weight`, [D]);
    this.attn = new MLA(ck, p, c, k, invFreq);
    this.moe = layer >= c.first_k_dense_replace;
    this.dense = this.moe ? null : new MLP(ck, `${p}.mlp`, D, c.intermediate_size, k);
    this.shared = this.moe && c.n_shared_experts > 0
      ? new MLP(ck, `${p}.mlp.shared_experts`, D, c.n_shared_experts * c.moe_intermediate_size, k)
      : null;
  }

  /** h[T, D] += MLA(norm(h)); h += FFN(norm(h)). `cached`: writeLatents has already put this
   * batch's keys and values in the cache. */
  async forward(h: Float32Array, b: ForwardBatch, cache: LatentCache, routed: RoutedFFN, impl: AttnImpl, trace?: Trace,
                cached = false): Promise<void> {
    const { k, c } = this;
    const T = b.T, D = c.hidden_size, eps = c.rms_norm_eps;
    const x = this.scratch.f32("x", T * D); // norm(h): [T, D]
    const y = this.scratch.f32("y", T * D); // sublayer output: [T, D]
    k.rmsnorm(x, h, this.attnNorm, T, D, eps);
    this.attn.forward(y, x, b, cache, impl, cached);
    trace?.(this.layer, "attn_out", y);
    k.add(h, y, T, D);
    k.rmsnorm(x, h, this.ffnNorm, T, D, eps);
    if (this.dense) this.dense.forward(y, x, T);
    else {
      // model.py: MoE returns routed + shared; the routed sum comes back from the experts.
      y.set(await routed(this.layer, x, T));
      this.shared?.forward(y, x, T, true); // y += shared experts(x)
    }
    trace?.(this.layer, "ffn_out", y);
    k.add(h, y, T, D);
    trace?.(this.layer, "out", h);
  }

  /** Only the keys and values of h[T, D] into the cache (rows whose outputs nobody reads). */
  writeLatents(h: Float32Array, b: ForwardBatch, cache: LatentCache): void {
    const x = this.scratch.f32("x", b.T * this.c.hidden_size);
    this.k.rmsnorm(x, h, this.attnNorm, b.T, this.c.hidden_size, this.c.rms_norm_eps);
    this.attn.writeLatents(x, b, cache);
  }
}
