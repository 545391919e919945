// Model shapes for random-weight checkpoints (make-model): the config.json and the tensors each implies.
// Field names are the upstream DeepSeek-V3 config.json names.

export interface RopeScalingSpec {
  type: "yarn";
  factor: number;
  original_max_position_embeddings: number;
  beta_fast: number;
  beta_slow: number;
  mscale: number;
  mscale_all_dim: number;
}

export interface ModelSpec {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  moe_intermediate_size: number;
  num_hidden_layers: number;
  first_k_dense_replace: number;
  num_nextn_predict_layers: number;
  n_routed_experts: number;
  num_experts_per_tok: number;
  n_group: number;
  topk_group: number;
  n_shared_experts: number;
  num_attention_heads: number;
  q_lora_rank: number | null;
  kv_lora_rank: number;
  qk_nope_head_dim: number;
  qk_rope_head_dim: number;
  v_head_dim: number;
  max_position_embeddings: number;
  rope_theta: number;
  routed_scaling_factor: number;
  rope_scaling: RopeScalingSpec;
}

const yarn = (factor: number, original: number): RopeScalingSpec => ({
  type: "yarn",
  factor,
  original_max_position_embeddings: original,
  beta_fast: 32,
  beta_slow: 1,
  mscale: 1.0,
  mscale_all_dim: 1.0,
});

export const PRESETS = {
  /** 814.7M parameters (~0.9 GB in FP8): big enough that kernels and the actor fabric dominate, small enough for one host. */
  "bench-m": {
    vocab_size: 32768,
    hidden_size: 1024,
    intermediate_size: 2816,
    moe_intermediate_size: 512,
    num_hidden_layers: 8,
    first_k_dense_replace: 1,
    num_nextn_predict_layers: 0,
    n_routed_experts: 64,
    num_experts_per_tok: 6,
    n_group: 8,
    topk_group: 4,
    n_shared_experts: 1,
    num_attention_heads: 16,
    q_lora_rank: 384,
    kv_lora_rank: 256,
    qk_nope_head_dim: 64,
    qk_rope_head_dim: 32,
    v_head_dim: 64,
    max_position_embeddings: 163840,
    rope_theta: 10000,
    routed_scaling_factor: 2.5,
    rope_scaling: yarn(40, 4096),
  },
  /**
   * Small and fast, for tests, and shaped to hit the paths the fixtures do not: q_lora_rank null (q_proj),
   * v_head_dim != qk_nope_head_dim, two shared experts, and 128-blocks that are partial in rows, in
   * columns and in both (kv_b_proj [320, 80], experts [96, 256] / [256, 96], shared [192, 256]).
   */
  "bench-s": {
    vocab_size: 4096,
    hidden_size: 256,
    intermediate_size: 320,
    moe_intermediate_size: 96,
    num_hidden_layers: 3,
    first_k_dense_replace: 1,
    num_nextn_predict_layers: 1,
    n_routed_experts: 16,
    num_experts_per_tok: 4,
    n_group: 4,
    topk_group: 2,
    n_shared_experts: 2,
    num_attention_heads: 4,
    q_lora_rank: null,
    kv_lora_rank: 80,
    qk_nope_head_dim: 32,
    qk_rope_head_dim: 16,
    v_head_dim: 48,
    max_position_embeddings: 1024,
    rope_theta: 10000,
    routed_scaling_factor: 2.5,
    rope_scaling: yarn(4, 256),
  },
  /** The real 671B shapes with 2 layers (+1 MTP): ~30 GB in FP8. For dry runs of loading, not for tests. */
  "v3-671b-2l": {
    vocab_size: 129280,
    hidden_size: 7168,
    intermediate_size: 18432,
    moe_intermediate_size: 2048,
    num_hidden_layers: 2,
    first_k_dense_replace: 1,
    num_nextn_predict_layers: 1,
    n_routed_experts: 256,
    num_experts_per_tok: 8,
    n_group: 8,
    topk_group: 4,
    n_shared_experts: 1,
    num_attention_heads: 128,
    q_lora_rank: 1536,
    kv_lora_rank: 512,
    qk_nope_head_dim: 128,
    qk_rope_head_dim: 64,
    v_head_dim: 128,
    max_position_embeddings: 163840,
    rope_theta: 10000,
    routed_scaling_factor: 2.5,
    rope_scaling: yarn(40, 4096),
  },
} as const satisfies Record<string, ModelSpec>;

export type PresetName = keyof typeof PRESETS;

export function isPresetName(name: string): name is PresetName {
  return Object.hasOwn(PRESETS, name);
}

/** A preset, optionally with fewer/more layers (the dense prefix is clamped to fit). */
export function presetSpec(name: PresetName, overrides: { layers?: number } = {}): ModelSpec {
  const base: ModelSpec = { ...PRESETS[name], rope_scaling: { ...PRESETS[name].rope_scaling } };
  if (overrides.layers === undefined) return base;
  if (!Number.isInteger(overrides.layers) || overrides.layers < 1) {
    throw new Error(`--layers must be a positive integer, got ${overrides.layers}`);
  }
  return {
    ...base,
    num_hidden_layers: overrides.layers,
    first_k_dense_replace: Math.min(base.first_k_dense_replace, overrides.layers),
  };
}

/** config.json as DeepSeek ships it (fixed fields from the released V3 config), keys sorted like HF writes them. */
export function configJson(spec: ModelSpec, format: "fp8" | "bf16"): Record<string, unknown> {
  const cfg: Record<string, unknown> = {
    architectures: ["DeepseekV3ForCausalLM"],
    attention_bias: false,
    attention_dropout: 0.0,
    aux_loss_alpha: 0.001,
    bos_token_id: 0,
    eos_token_id: 1,
    ep_size: 1,
    hidden_act: "silu",
    initializer_range: 0.02,
    model_type: "deepseek_v3",
    moe_layer_freq: 1,
    norm_topk_prob: true,
    num_key_value_heads: spec.num_attention_heads,
    pretraining_tp: 1,
    rms_norm_eps: 1e-6,
    scoring_func: "sigmoid",
    seq_aux: true,
    tie_word_embeddings: false,
    topk_method: "noaux_tc",
    torch_dtype: "bfloat16",
    transformers_version: "4.33.1",
    use_cache: true,
    ...spec,
    rope_scaling: sortKeys({ ...spec.rope_scaling }),
  };
  if (format === "fp8") {
    cfg.quantization_config = {
      activation_scheme: "dynamic",
      fmt: "e4m3",
      quant_method: "fp8",
      weight_block_size: [128, 128],
    };
  }
  return sortKeys(cfg);
}

function sortKeys<T extends Record<string, unknown>>(o: T): T {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) as T;
}

/** `skew` (the gate's correction bias only): plus skewBias(e, skew) for expert e (router-skew.ts). */
export type Init = { normal: number; skew?: number } | { uniform: [number, number] };
/** One logical weight. `proj` becomes F8_E4M3 + `_scale_inv` (fp8) or BF16 (bf16); seedName makes copies byte-identical. */
export interface WeightPlan { name: string; shape: number[]; kind: "proj" | "bf16" | "f32"; init: Init; seedName: string; shard: number }

/** Every tensor of the HF layout with its README init; shards: layers split in two, MTP alone in the last. */
export function planWeights(spec: ModelSpec, opts: { fp8EhProj?: boolean; routerSkew?: number } = {}): WeightPlan[] {
  const d = spec.hidden_size, H = spec.num_attention_heads, L = spec.num_hidden_layers;
  const qkHead = spec.qk_nope_head_dim + spec.qk_rope_head_dim;
  const out: WeightPlan[] = [];
  const add = (name: string, shape: number[], kind: WeightPlan["kind"], init: Init, shard: number, seedName = name) =>
    out.push({ name, shape, kind, init, seedName, shard });
  const proj = (name: string, o: number, i: number, s: number) => add(name, [o, i], "proj", { normal: 1 / Math.sqrt(i) }, s);
  const norm = (name: string, n: number, s: number) => add(name, [n], "bf16", { uniform: [0.8, 1.2] }, s);
  const mlp = (p: string, inter: number, s: number) => {
    proj(p + "gate_proj.weight", inter, d, s);
    proj(p + "up_proj.weight", inter, d, s);
    proj(p + "down_proj.weight", d, inter, s);
  };
  const embed = (name: string, s: number) => add(name, [spec.vocab_size, d], "bf16", { normal: 1 }, s, "model.embed_tokens.weight");
  const head = (name: string, s: number) => add(name, [spec.vocab_size, d], "bf16", { normal: 1 / Math.sqrt(d) }, s, "lm_head.weight");

  embed("model.embed_tokens.weight", 0);
  for (let i = 0; i < L + spec.num_nextn_predict_layers; i++) {
    const p = `model.layers.${i}.`, s = i >= L ? 2 : i < Math.ceil(L / 2) ? 0 : 1;
    norm(p + "input_layernorm.weight", d, s);
    norm(p + "post_attention_layernorm.weight", d, s);
    const a = p + "self_attn.";
    if (spec.q_lora_rank === null) proj(a + "q_proj.weight", H * qkHead, d, s);
    else {
      proj(a + "q_a_proj.weight", spec.q_lora_rank, d, s);
      norm(a + "q_a_layernorm.weight", spec.q_lora_rank, s);
      proj(a + "q_b_proj.weight", H * qkHead, spec.q_lora_rank, s);
    }
    proj(a + "kv_a_proj_with_mqa.weight", spec.kv_lora_rank + spec.qk_rope_head_dim, d, s);
    norm(a + "kv_a_layernorm.weight", spec.kv_lora_rank, s);
    proj(a + "kv_b_proj.weight", H * (spec.qk_nope_head_dim + spec.v_head_dim), spec.kv_lora_rank, s);
    proj(a + "o_proj.weight", d, H * spec.v_head_dim, s);
    if (i < spec.first_k_dense_replace) mlp(p + "mlp.", spec.intermediate_size, s);
    else {
      add(p + "mlp.gate.weight", [spec.n_routed_experts, d], "bf16", { normal: 1 / Math.sqrt(d) }, s);
      add(p + "mlp.gate.e_score_correction_bias", [spec.n_routed_experts], "f32", { normal: 0.05, ...(opts.routerSkew ? { skew: opts.routerSkew } : {}) }, s);
      for (let e = 0; e < spec.n_routed_experts; e++) mlp(`${p}mlp.experts.${e}.`, spec.moe_intermediate_size, s);
      if (spec.n_shared_experts > 0) mlp(p + "mlp.shared_experts.", spec.n_shared_experts * spec.moe_intermediate_size, s);
    }
    if (i >= L) { // MTP: embedding and head share parameters with the main model (byte-identical copies)
      norm(p + "enorm.weight", d, s);
      norm(p + "hnorm.weight", d, s);
      add(p + "eh_proj.weight", [d, 2 * d], opts.fp8EhProj ? "proj" : "bf16", { normal: 1 / Math.sqrt(2 * d) }, s);
      embed(p + "embed_tokens.weight", s);
      norm(p + "shared_head.norm.weight", d, s);
      head(p + "shared_head.head.weight", s);
    }
  }
  norm("model.norm.weight", d, 1);
  head("lm_head.weight", 1);
  return out;
}
