// Choosing the next token from one row of logits: penalties, then greedy or a seeded draw under
// temperature / top-k / top-p / min-p; logprobs are those of the raw model distribution. A
// grammar's mask (SampleSpec.mask) removes the tokens it does not allow before anything else.
import type { Kernels } from "../kernels/kernels.ts";
import type { SampleSpec, Sampled } from "../protocol.ts";

export type { SampleSpec, Sampled };

/** Below this a temperature is greedy: 1/T overflows f32 logits (1e-50 is 0 in the C sampler, which
 * then fails), and vLLM treats temperatures under 1e-5 as greedy too. */
export const MIN_TEMPERATURE = 1e-5;

export function isGreedy(s: SampleSpec): boolean {
  return !(s.temperature >= MIN_TEMPERATURE); // NaN too
}

export function hasPenalties(s: SampleSpec): boolean {
  return s.repetition_penalty !== 1 || s.frequency_penalty !== 0 || s.presence_penalty !== 0;
}

/** Greedy without penalties or logprobs: the token is the argmax of the raw logits, so a whole
 * run of rows can be decided by one argmax call. */
export function plainGreedy(s: SampleSpec): boolean {
  return isGreedy(s) && s.logprobs === null && !hasPenalties(s) && !s.mask;
}

/** The logits with every token the mask does not allow at -Infinity (a copy; `logits` is kept for
 * the raw logprobs). */
export function applyMask(logits: Float32Array, mask: Uint32Array): Float32Array {
  const V = logits.length;
  if (mask.length < Math.ceil(V / 32)) throw new Error(`the token mask has ${mask.length} words for a vocabulary of ${V}`);
  const out = new Float32Array(V).fill(-Infinity);
  let any = false;
  for (let w = 0, base = 0; base < V; w++, base += 32) {
    let bits = mask[w] | 0;
    if (bits === 0) continue;
    any = true;
    if (bits === -1 && base + 32 <= V) {
      for (let t = base; t < base + 32; t++) out[t] = logits[t];
      continue;
    }
    while (bits !== 0) { // the set bits, lowest first
      const low = bits & -bits, t = base + 31 - Math.clz32(low);
      if (t < V) out[t] = logits[t];
      bits ^= low;
    }
  }
  if (!any) throw new Error("the grammar allows no token here");
  return out;
}

function penalize(logits: Float32Array, s: SampleSpec): Float32Array {
  if (!hasPenalties(s)) return logits;
  const out = s.mask ? logits : logits.slice(); // a masked row is already a copy
  const counts = new Map<number, number>();
  for (let i = 0; i < s.output.length; i++) counts.set(s.output[i], (counts.get(s.output[i]) ?? 0) + 1);
  if (s.repetition_penalty !== 1) {
    const seen = new Set<number>(counts.keys());
    if (s.prompt) for (let i = 0; i < s.prompt.length; i++) seen.add(s.prompt[i]);
    for (const id of seen) out[id] = out[id] > 0 ? out[id] / s.repetition_penalty : out[id] * s.repetition_penalty;
  }
  for (const [id, n] of counts) out[id] -= s.frequency_penalty * n + (n > 0 ? s.presence_penalty : 0);
  return out;
}

export function topLogprobs(lp: Float32Array, k: number): { id: number; logprob: number }[] {
  const top: { id: number; logprob: number }[] = [];
  if (k <= 0) return top;
  for (let v = 0; v < lp.length; v++) {
    if (top.length < k) top.push({ id: v, logprob: lp[v] });
    else if (lp[v] > top[k - 1].logprob) top[k - 1] = { id: v, logprob: lp[v] };
    else continue;
    top.sort((a, b) => b.logprob - a.logprob || a.id - b.id);
  }
  return top;
}

const best = new Int32Array(1); // argmax output, reused (kernels run synchronously)

export function sample(k: Kernels, logits: Float32Array, s: SampleSpec): Sampled {
  const V = logits.length;
  const l = penalize(s.mask ? applyMask(logits, s.mask) : logits, s);
  let token: number;
  if (isGreedy(s)) {
    k.argmax(best, l, 1, V);
    token = best[0];
  } else {
    token = k.sample(l, V, { temperature: s.temperature, topK: s.top_k, topP: s.top_p, minP: s.min_p, u: s.u });
  }
  if (s.logprobs === null) return { token };
  const lp = new Float32Array(V);
  k.logSoftmax(lp, logits, 1, V);
  return { token, logprob: lp[token], top: topLogprobs(lp, s.logprobs) };
}
