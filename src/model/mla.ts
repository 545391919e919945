// Multi-head latent attention (DeepSeek-V3 §2.1.1). Queries through the low-rank q path (or a
// plain q_proj when q_lora_rank is null); keys and values live in the cache as the normalized
// latent plus one shared roped key. "absorb" folds kv_b into the query and the output (decode);
// "naive" expands kv_b over the context (cheaper for long prefill). Both give the same result.
import type { Checkpoint, Weight } from "../checkpoint/checkpoint.ts";
import type { ModelConfig } from "../config/model.ts";
import type { Kernels, MlaShape } from "../kernels/kernels.ts";
import type { ForwardBatch } from "./batch.ts";
import type { LatentCache } from "./kvcache.ts";
import { Scratch } from "./scratch.ts";

export type AttnImpl = "absorb" | "naive" | "auto";

export class MLA {
  private readonly wq: Weight | null;
  private readonly wqA: Weight | null;
  private readonly qNorm: Weight | null;
  private readonly wqB: Weight | null;
  private readonly wkvA: Weight;
  private readonly kvNorm: Weight;
  private readonly wkvB: Weight;
  private readonly wo: Weight;
  readonly shape: MlaShape;
  private readonly scratch = new Scratch();

  constructor(ck: Checkpoint, prefix: string, private readonly c: ModelConfig, private readonly k: Kernels,
              private readonly invFreq: Float32Array) {
    const H = c.num_attention_heads, D = c.hidden_size, dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim;
    const dv = c.v_head_dim, C = c.kv_lora_rank, qr = c.q_lora_rank;
    this.shape = { H, C, dn, dr, dv };
    const p = `${prefix}.self_attn`;
    if (qr === null) {
      this.wq = ck.weight(`${p}.q_proj.weight`, [H * (dn + dr), D]);
      this.wqA = this.qNorm = this.wqB = null;
    } else {
      this.wq = null;
      this.wqA = ck.weight(`${p}.q_a_proj.weight`, [qr, D]);
      this.qNorm = ck.weight(`${p}.q_a_layernorm.weight`, [qr]);
      this.wqB = ck.weight(`${p}.q_b_proj.weight`, [H * (dn + dr), qr]);
    }
    this.wkvA = ck.weight(`${p}.kv_a_proj_with_mqa.weight`, [C + dr, D]);
    this.kvNorm = ck.weight(`${p}.kv_a_layernorm.weight`, [C]);
    this.wkvB = ck.weight(`${p}.kv_b_proj.weight`, [H * (dn + dv), C]);
    this.wo = ck.weight(`${p}.o_proj.weight`, [D, H * dv]);
  }

  /** out[T, D] = MLA(x[T, D]); writes this step's latents into the cache first, unless `cached`
   * says writeLatents already has. */
  forward(out: Float32Array, x: Float32Array, b: ForwardBatch, cache: LatentCache, impl: AttnImpl = "auto", cached = false): void {
    const { k, c } = this;
    const { H, C, dn, dr, dv } = this.shape;
    const T = b.T, eps = c.rms_norm_eps;
    // q: [T, H, dn+dr]
    const sc = this.scratch;
    const q = sc.f32("q", T * H * (dn + dr));
    if (this.wq) k.linear(q, x, this.wq, T);
    else {
      const qa = sc.f32("qa", T * c.q_lora_rank!); // [T, q_lora_rank]
      k.linear(qa, x, this.wqA!, T);
      k.rmsnorm(qa, qa, this.qNorm!, T, c.q_lora_rank!, eps);
      k.linear(q, qa, this.wqB!, T);
    }
    k.rope(q, b.positions, this.invFreq, T, { ldToken: H * (dn + dr), ldHead: dn + dr, heads: H, offset: dn, ropeDim: dr });
    if (!cached) this.writeLatents(x, b, cache);

    const o = sc.f32("o", T * H * dv); // [T, H*dv]
    const naive = impl === "naive" || (impl === "auto" && T >= 32 && b.S === 1);
    if (naive) this.attendNaive(o, q, b, cache);
    else {
      const qLat = sc.f32("qLat", T * H * C); // [T, H, C]
      k.mlaAbsorbQ(qLat, q, this.wkvB, T, this.shape);
      const oLat = sc.f32("oLat", T * H * C); // [T, H, C]
      k.mlaAttend(oLat, qLat, q, cache,
        { blockTables: b.blockTables, maxBlocks: b.maxBlocks, cuQ: b.cuQ, ctxLen: b.ctxLen, S: b.S, pageSize: cache.pageSize },
        this.shape, c.softmax_scale);
      k.mlaAbsorbOut(o, oLat, this.wkvB, T, this.shape);
    }
    k.linear(out, o, this.wo, T);
  }

  /** The keys and values of x[T, D] into the cache: kv_norm(latent) and the roped shared key. */
  writeLatents(x: Float32Array, b: ForwardBatch, cache: LatentCache): void {
    const { k, c } = this;
    const { C, dr } = this.shape;
    const T = b.T, sc = this.scratch;
    const kv = sc.f32("kv", T * (C + dr)); // [T, C + dr] = latent | shared rope key
    k.linear(kv, x, this.wkvA, T);
    k.rope(kv, b.positions, this.invFreq, T, { ldToken: C + dr, ldHead: 0, heads: 1, offset: C, ropeDim: dr });
    const latent = sc.f32("latent", T * C); // kv_norm(latent): [T, C]
    k.rmsnorm(latent, kv, this.kvNorm, T, C, c.rms_norm_eps, { ldx: C + dr });
    k.kvWrite(cache, latent, C, kv.subarray(C), C + dr, b.slots, T, C, dr); // rounded to the cache's dtype
  }

  private attendNaive(o: Float32Array, q: Float32Array, b: ForwardBatch, cache: LatentCache): void {
    const { k, c } = this;
    const { H, C, dn, dr, dv } = this.shape;
    for (let s = 0; s < b.S; s++) {
      const r0 = b.cuQ[s], n = b.cuQ[s + 1] - r0, L = b.ctxLen[s];
      if (n === 0) continue;
      const lat = new Float32Array(L * C), pe = new Float32Array(L * dr);
      k.kvGather(lat, pe, cache, b.blockTables.subarray(s * b.maxBlocks, (s + 1) * b.maxBlocks), L, C, dr, cache.pageSize);
      const kvx = new Float32Array(L * H * (dn + dv)); // [L, H, dn+dv] = kv_b(latent)
      k.linear(kvx, lat, this.wkvB, L);
      k.mlaAttendNaive(o.subarray(r0 * H * dv), q.subarray(r0 * H * (dn + dr)), kvx, pe, n, L, L - n, this.shape, c.softmax_scale);
    }
  }
}
