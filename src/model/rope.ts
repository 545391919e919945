// YaRN rotary frequencies, computed step by step in float32 as model.py's precompute_freqs_cis.
import type { ModelConfig } from "../config/model.ts";

const f = Math.fround;

export function ropeInvFreq(c: ModelConfig): Float32Array {
  const dim = c.qk_rope_head_dim;
  const half = dim / 2;
  const base = c.rope_theta;
  const freqs = new Float32Array(half);
  for (let i = 0; i < half; i++) freqs[i] = f(1 / f(base ** f((2 * i) / dim)));
  const r = c.rope_scaling;
  // model.py applies YaRN only when max_seq_len > original_seq_len; HF and vLLM always do, and a
  // server's context is always the long one, so we always do.
  if (!r || r.factor <= 1) return freqs;
  const corrDim = (rot: number) => (dim * Math.log(r.original_max_position_embeddings / (rot * 2 * Math.PI))) / (2 * Math.log(base));
  const low = Math.max(Math.floor(corrDim(r.beta_fast)), 0);
  let high = Math.min(Math.ceil(corrDim(r.beta_slow)), dim - 1);
  if (low === high) high += 0.001;
  for (let i = 0; i < half; i++) {
    const ramp = Math.min(Math.max(f(f(i - low) / f(high - low)), 0), 1);
    const smooth = f(1 - ramp);
    freqs[i] = f(f(f(freqs[i] / r.factor) * f(1 - smooth)) + f(freqs[i] * smooth));
  }
  return freqs;
}
