// The model's config.json, validated once at the edge and frozen. Keys are the upstream names;
// unknown keys are errors (a typo must not silently fall back to a default).
import { z } from "zod";
import { readFileSync } from "node:fs";

const RopeScaling = z
  .object({
    type: z.literal("yarn").optional(),
    rope_type: z.literal("yarn").optional(),
    factor: z.number().positive(),
    original_max_position_embeddings: z.number().int().positive(),
    beta_fast: z.number().positive().default(32),
    beta_slow: z.number().positive().default(1),
    mscale: z.number().default(1),
    mscale_all_dim: z.number().default(0),
  })
  .strict()
  .refine((r) => r.type === "yarn" || r.rope_type === "yarn", { message: "rope_scaling.type must be 'yarn'" });

const Quantization = z
  .object({
    activation_scheme: z.literal("dynamic"),
    fmt: z.literal("e4m3"),
    quant_method: z.literal("fp8"),
    weight_block_size: z.tuple([z.literal(128), z.literal(128)]),
  })
  .strict();

const posInt = z.number().int().positive();
const nonNegInt = z.number().int().nonnegative();

export const ModelConfigSchema = z
  .object({
    architectures: z.array(z.string()).optional(),
    model_type: z.enum(["deepseek_v3", "deepseek_v2", "kimi_k2"]),
    auto_map: z.record(z.string(), z.string()).optional(),
    _name_or_path: z.string().optional(),
    vocab_size: posInt,
    hidden_size: posInt,
    intermediate_size: posInt,
    moe_intermediate_size: posInt,
    num_hidden_layers: posInt,
    num_nextn_predict_layers: nonNegInt.default(0),
    num_attention_heads: posInt,
    num_key_value_heads: posInt.optional(),
    n_shared_experts: nonNegInt,
    n_routed_experts: posInt,
    routed_scaling_factor: z.number().positive(),
    num_experts_per_tok: posInt,
    n_group: posInt.default(1),
    topk_group: posInt.default(1),
    topk_method: z.enum(["noaux_tc", "greedy", "group_limited_greedy"]),
    scoring_func: z.enum(["sigmoid", "softmax"]),
    norm_topk_prob: z.boolean(),
    first_k_dense_replace: nonNegInt,
    moe_layer_freq: z.literal(1).default(1),
    q_lora_rank: posInt.nullable(),
    kv_lora_rank: posInt,
    qk_nope_head_dim: posInt,
    qk_rope_head_dim: posInt.refine((n) => n % 2 === 0, "qk_rope_head_dim must be even"),
    v_head_dim: posInt,
    rope_theta: z.number().positive(),
    rope_scaling: RopeScaling.nullable().default(null),
    max_position_embeddings: posInt,
    rms_norm_eps: z.number().positive(),
    hidden_act: z.literal("silu").default("silu"),
    bos_token_id: nonNegInt.nullable().default(0),
    eos_token_id: z.union([nonNegInt, z.array(nonNegInt)]).default(1),
    pad_token_id: nonNegInt.nullable().optional(),
    tie_word_embeddings: z.literal(false).default(false),
    quantization_config: Quantization.optional(),
    torch_dtype: z.string().optional(),
    dtype: z.string().optional(),
    transformers_version: z.string().optional(),
    use_cache: z.boolean().optional(),
    pretraining_tp: z.number().optional(),
    attention_bias: z.literal(false).optional(),
    attention_dropout: z.number().optional(),
    initializer_range: z.number().optional(),
    aux_loss_alpha: z.number().optional(),
    seq_aux: z.boolean().optional(),
    ep_size: z.number().optional(),
    rope_interleave: z.boolean().optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    const bad = (path: string, message: string) => ctx.addIssue({ code: "custom", path: [path], message });
    if (c.n_routed_experts % c.n_group !== 0) bad("n_group", `n_routed_experts ${c.n_routed_experts} is not divisible by n_group ${c.n_group}`);
    if (c.topk_group > c.n_group) bad("topk_group", `topk_group ${c.topk_group} exceeds n_group ${c.n_group}`);
    if (c.num_experts_per_tok > (c.n_routed_experts / c.n_group) * c.topk_group)
      bad("num_experts_per_tok", "more experts per token than the kept groups hold");
    if (c.first_k_dense_replace > c.num_hidden_layers) bad("first_k_dense_replace", "exceeds num_hidden_layers");
  });

export type RawModelConfig = z.infer<typeof ModelConfigSchema>;

/** The validated config plus the quantities every layer derives from it. */
export interface ModelConfig extends RawModelConfig {
  readonly qk_head_dim: number;
  readonly softmax_scale: number;
  readonly eos_ids: readonly number[];
  readonly fp8: boolean;
  readonly n_layers_total: number; // main layers + MTP layers
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** model.py: softmax_scale = qk_head_dim^-0.5 * mscale^2 with YaRN (always applied, as HF/vLLM do). */
function softmaxScale(c: RawModelConfig): number {
  const base = 1 / Math.sqrt(c.qk_nope_head_dim + c.qk_rope_head_dim);
  const r = c.rope_scaling;
  if (!r || r.factor <= 1) return base;
  const m = 0.1 * r.mscale_all_dim * Math.log(r.factor) + 1;
  return base * m * m;
}

export function parseModelConfig(raw: unknown, source = "config.json"): ModelConfig {
  const res = ModelConfigSchema.safeParse(raw);
  if (!res.success) {
    const msg = res.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
    throw new ConfigError(`${source}: invalid model config: ${msg}`);
  }
  const c = res.data;
  return Object.freeze({
    ...c,
    qk_head_dim: c.qk_nope_head_dim + c.qk_rope_head_dim,
    softmax_scale: softmaxScale(c),
    eos_ids: Object.freeze(Array.isArray(c.eos_token_id) ? c.eos_token_id : [c.eos_token_id]),
    fp8: c.quantization_config !== undefined,
    n_layers_total: c.num_hidden_layers + c.num_nextn_predict_layers,
  });
}

export function loadModelConfig(path: string): ModelConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new ConfigError(`${path}: cannot read model config (${(e as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${path}: not valid JSON (${(e as Error).message})`);
  }
  return parseModelConfig(raw, path);
}
