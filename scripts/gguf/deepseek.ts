// DeepSeek-V3 Hugging Face checkpoint -> llama.cpp `deepseek2` GGUF: the metadata keys and tensor
// names convert_hf_to_gguf.py (DeepseekV2Model) writes. MLA is stored for the absorbed path: kv_b_proj
// split per head into attn_k_b (k part, transposed) and attn_v_b; or, for llama.cpp before its MLA
// rework (April 2025, e.g. commit c392e50), as one attn_kv_b matrix ("merged"). Routed experts
// stacked per layer (ffn_*_exps); norms, the router and its correction bias kept F32.
import type { Checkpoint, Weight } from "../../src/checkpoint/checkpoint.ts";
import { GGML, type GgmlType, type GgufWriter } from "./format.ts";
import { convertRows, decodeRows, encode } from "./quant.ts";

/** f32 is for checking the conversion: llama.cpp then computes in f32 and matches moe-actors' logits. */
export type Target = "q8_0" | "bf16" | "f32";
/** How MLA's kv_b is stored: split (llama.cpp since April 2025) or merged (the layout before). */
export type MlaLayout = "split" | "merged";
const FILE_TYPE: Record<Target, number> = { q8_0: 7, bf16: 32, f32: 0 }; // llama_ftype MOSTLY_Q8_0, MOSTLY_BF16, ALL_F32
const MATRIX: Record<Target, GgmlType> = { q8_0: GGML.Q8_0, bf16: GGML.BF16, f32: GGML.F32 };

export function writeMetadata(g: GgufWriter, ck: Checkpoint, name: string, target: Target, mla: MlaLayout = "split"): void {
  const c = ck.config, a = "deepseek2";
  g.str("general.architecture", a);
  g.str("general.type", "model");
  g.str("general.name", name);
  g.u32(`${a}.block_count`, c.num_hidden_layers);
  g.u32(`${a}.context_length`, c.max_position_embeddings);
  g.u32(`${a}.embedding_length`, c.hidden_size);
  g.u32(`${a}.feed_forward_length`, c.intermediate_size);
  g.u32(`${a}.attention.head_count`, c.num_attention_heads);
  // MLA runs as MQA over the latent; before the rework llama.cpp cached full per-head k and v
  g.u32(`${a}.attention.head_count_kv`, mla === "merged" ? c.num_attention_heads : 1);
  const rs = c.rope_scaling;
  if (rs) {
    g.str(`${a}.rope.scaling.type`, "yarn");
    g.f32(`${a}.rope.scaling.factor`, rs.factor);
    g.u32(`${a}.rope.scaling.original_context_length`, rs.original_max_position_embeddings);
    g.f32(`${a}.rope.scaling.yarn_beta_fast`, rs.beta_fast);
    g.f32(`${a}.rope.scaling.yarn_beta_slow`, rs.beta_slow);
  }
  g.f32(`${a}.rope.freq_base`, c.rope_theta);
  g.f32(`${a}.attention.layer_norm_rms_epsilon`, c.rms_norm_eps);
  g.u32(`${a}.expert_count`, c.n_routed_experts);
  g.u32(`${a}.expert_used_count`, c.num_experts_per_tok);
  g.u32(`${a}.expert_group_count`, c.n_group);
  g.u32(`${a}.expert_group_used_count`, c.topk_group);
  g.u32(`${a}.expert_gating_func`, c.scoring_func === "sigmoid" ? 2 : 1); // llama_expert_gating_func_type
  g.u32("general.file_type", FILE_TYPE[target]);
  g.u32(`${a}.leading_dense_block_count`, c.first_k_dense_replace);
  g.u32(`${a}.vocab_size`, c.vocab_size);
  if (c.q_lora_rank !== null) g.u32(`${a}.attention.q_lora_rank`, c.q_lora_rank);
  g.u32(`${a}.attention.kv_lora_rank`, c.kv_lora_rank);
  if (mla === "merged") { // per-head q/k/v sizes, as llama.cpp read them before the MLA keys
    g.u32(`${a}.attention.key_length`, c.qk_nope_head_dim + c.qk_rope_head_dim);
    g.u32(`${a}.attention.value_length`, c.v_head_dim);
  } else {
    g.u32(`${a}.attention.key_length`, c.kv_lora_rank + c.qk_rope_head_dim);
    g.u32(`${a}.attention.value_length`, c.kv_lora_rank);
    g.u32(`${a}.attention.key_length_mla`, c.qk_nope_head_dim + c.qk_rope_head_dim);
    g.u32(`${a}.attention.value_length_mla`, c.v_head_dim);
  }
  g.u32(`${a}.expert_feed_forward_length`, c.moe_intermediate_size);
  g.u32(`${a}.expert_shared_count`, c.n_shared_experts);
  g.f32(`${a}.expert_weights_scale`, c.routed_scaling_factor);
  if (c.norm_topk_prob) g.bool(`${a}.expert_weights_norm`, true);
  g.u32(`${a}.rope.dimension_count`, c.qk_rope_head_dim);
  // convert_hf_to_gguf writes 0.1 * mscale_all_dim (llama.cpp divides the 0.1 back out)
  if (rs) g.f32(`${a}.rope.scaling.yarn_log_multiplier`, 0.1 * rs.mscale_all_dim);
  if (target === "q8_0") g.u32("general.quantization_version", 2);
}

/** Adds every tensor of the model, in convert_hf_to_gguf's order and types. */
export function addTensors(g: GgufWriter, ck: Checkpoint, target: Target, mla: MlaLayout = "split"): void {
  const c = ck.config, mat = MATRIX[target];
  const shapeOf = (n: string) => ck.info(n).shape;
  const w = (n: string): Weight => ck.weight(n, shapeOf(n));
  /** A 2-D weight [out, in] as ne [in, out]. */
  const matrix = (gname: string, hf: string, type: GgmlType = mat) => {
    const [o, i] = shapeOf(hf);
    g.add({ name: gname, ne: [i, o], type, produce: (put) => put(convertRows(w(hf), type)) });
  };
  const vector = (gname: string, hf: string) => {
    const [n] = shapeOf(hf);
    g.add({ name: gname, ne: [n], type: GGML.F32, produce: (put) => put(encode(GGML.F32, decodeRows(w(hf)), n)) });
  };
  matrix("token_embd.weight", "model.embed_tokens.weight");
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}`, b = `blk.${l}`;
    vector(`${b}.attn_norm.weight`, `${p}.input_layernorm.weight`);
    if (c.q_lora_rank !== null) {
      matrix(`${b}.attn_q_a.weight`, `${p}.self_attn.q_a_proj.weight`);
      vector(`${b}.attn_q_a_norm.weight`, `${p}.self_attn.q_a_layernorm.weight`);
      matrix(`${b}.attn_q_b.weight`, `${p}.self_attn.q_b_proj.weight`);
    } else matrix(`${b}.attn_q.weight`, `${p}.self_attn.q_proj.weight`);
    matrix(`${b}.attn_kv_a_mqa.weight`, `${p}.self_attn.kv_a_proj_with_mqa.weight`);
    vector(`${b}.attn_kv_a_norm.weight`, `${p}.self_attn.kv_a_layernorm.weight`);
    if (mla === "merged") matrix(`${b}.attn_kv_b.weight`, `${p}.self_attn.kv_b_proj.weight`);
    else addKvB(g, ck, `${p}.self_attn.kv_b_proj.weight`, b, mat);
    matrix(`${b}.attn_output.weight`, `${p}.self_attn.o_proj.weight`);
    vector(`${b}.ffn_norm.weight`, `${p}.post_attention_layernorm.weight`);
    if (l < c.first_k_dense_replace) {
      for (const k of ["gate", "up", "down"]) matrix(`${b}.ffn_${k}.weight`, `${p}.mlp.${k}_proj.weight`);
      continue;
    }
    matrix(`${b}.ffn_gate_inp.weight`, `${p}.mlp.gate.weight`, GGML.F32);
    if (ck.has(`${p}.mlp.gate.e_score_correction_bias`)) vector(`${b}.exp_probs_b.bias`, `${p}.mlp.gate.e_score_correction_bias`);
    for (const k of ["gate", "up", "down"]) {
      const first = shapeOf(`${p}.mlp.experts.0.${k}_proj.weight`);
      g.add({
        name: `${b}.ffn_${k}_exps.weight`, ne: [first[1], first[0], c.n_routed_experts], type: mat,
        produce: (put) => { for (let e = 0; e < c.n_routed_experts; e++) put(convertRows(w(`${p}.mlp.experts.${e}.${k}_proj.weight`), mat)); },
      });
    }
    if (c.n_shared_experts > 0)
      for (const k of ["gate", "up", "down"]) matrix(`${b}.ffn_${k}_shexp.weight`, `${p}.mlp.shared_experts.${k}_proj.weight`);
  }
  vector("output_norm.weight", "model.norm.weight");
  matrix("output.weight", "lm_head.weight");
}

/** kv_b_proj [heads*(nope+v), kv_lora] -> attn_k_b ne [nope, kv_lora, heads] (k transposed), attn_v_b ne [kv_lora, v, heads]. */
function addKvB(g: GgufWriter, ck: Checkpoint, hf: string, b: string, type: GgmlType): void {
  const c = ck.config, nH = c.num_attention_heads, nope = c.qk_nope_head_dim, v = c.v_head_dim, R = c.kv_lora_rank;
  const shape = ck.info(hf).shape;
  if (shape[0] !== nH * (nope + v) || shape[1] !== R) throw new Error(`${hf}: shape [${shape}], expected [${nH * (nope + v)}, ${R}]`);
  const full = () => decodeRows(ck.weight(hf, shape)); // [nH, nope+v, R], f32
  g.add({
    name: `${b}.attn_k_b.weight`, ne: [nope, R, nH], type,
    produce: (put) => {
      const x = full(), t = new Float32Array(R * nope);
      for (let h = 0; h < nH; h++) {
        const base = h * (nope + v) * R;
        for (let r = 0; r < R; r++) for (let d = 0; d < nope; d++) t[r * nope + d] = x[base + d * R + r];
        put(encode(type, t, nope));
      }
    },
  });
  g.add({
    name: `${b}.attn_v_b.weight`, ne: [R, v, nH], type,
    produce: (put) => {
      const x = full();
      for (let h = 0; h < nH; h++) put(encode(type, x.subarray((h * (nope + v) + nope) * R, (h + 1) * (nope + v) * R), R));
    },
  });
}
