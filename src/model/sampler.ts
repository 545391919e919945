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
  const V = logits.length, W = Math.ceil(V / 32);
  if (mask.length < W) throw new Error(`the token mask has ${mask.length} words for a vocabulary of ${V}`);
  let zeros = 0;
  for (let w = 0; w < W; w++) if (mask[w] === 0) zeros++;
  if (zeros === W) throw new Error("the grammar allows no token here");
  // Bulk copies and fills do the work: few tokens allowed (structure) start from -Infinity and copy
  // the allowed ones; most allowed (inside a string) start from a copy and clear the rest.
  const sparse = zeros * 2 > W, out = sparse ? new Float32Array(V).fill(-Infinity) : logits.slice();
  for (let w = 0; w < W; w++) {
    let bits = sparse ? mask[w] | 0 : ~mask[w];
    if (bits === 0) continue;
    const base = w * 32;
    if (!sparse && bits === -1) { // a run of words that allow nothing
      let end = w + 1;
      while (end < W && mask[end] === 0) end++;
      out.fill(-Infinity, base, Math.min(end * 32, V));
      w = end - 1;
      continue;
    }
    while (bits !== 0) { // the set bits, lowest first
      const low = bits & -bits, t = base + 31 - Math.clz32(low);
      if (t < V) out[t] = sparse ? logits[t] : -Infinity;
      bits ^= low;
    }
  }
  return out;
}

function penalize(logits: Float32Array, s: SampleSpec): Float32Array {
  if (!hasPenalties(s)) return logits;
  const out = logits.slice();
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

/** Greedy or a seeded draw from one row. */
function pick(k: Kernels, l: Float32Array, s: SampleSpec): number {
  if (isGreedy(s)) {
    k.argmax(best, l, 1, l.length);
    return best[0];
  }
  return k.sample(l, l.length, { temperature: s.temperature, topK: s.top_k, topP: s.top_p, minP: s.min_p, u: s.u });
}

/** The allowed token ids of a mask, ascending. */
export function allowedIds(mask: Uint32Array, V: number): Int32Array {
  const W = Math.ceil(V / 32);
  if (mask.length < W) throw new Error(`the token mask has ${mask.length} words for a vocabulary of ${V}`);
  const n = allowedCount(mask, V);
  const ids = new Int32Array(n);
  for (let w = 0, i = 0; w < W; w++) {
    let bits = mask[w] | 0;
    while (bits !== 0) {
      const low = bits & -bits;
      ids[i++] = w * 32 + 31 - Math.clz32(low);
      bits ^= low;
    }
  }
  let end = n;
  while (end > 0 && ids[end - 1] >= V) end--;
  if (end === 0) throw new Error("the grammar allows no token here");
  return end === n ? ids : ids.subarray(0, end);
}

function maskAllows(mask: Uint32Array, t: number): boolean {
  return ((mask[t >>> 5] >>> (t & 31)) & 1) === 1;
}

function allowedCount(mask: Uint32Array, V: number): number {
  let n = 0;
  for (let w = 0, W = Math.min(mask.length, Math.ceil(V / 32)); w < W; w++) n += popcount(mask[w]);
  return n;
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

export function sample(k: Kernels, logits: Float32Array, s: SampleSpec): Sampled {
  const V = logits.length;
  let token: number;
  if (s.mask && isGreedy(s) && !hasPenalties(s) && maskAllows(s.mask, (k.argmax(best, logits, 1, V), best[0]))) {
    token = best[0]; // the model's own choice is allowed (so it is also the first best of the allowed)
  } else if (s.mask && allowedCount(s.mask, V) * 2 > V) {
    token = pick(k, penalize(applyMask(logits, s.mask), s), s); // most allowed (a string): mask the row
  } else if (s.mask) {
    // Few allowed (structure): the draw is made among them alone (the others have probability 0),
    // a compact row in ascending id order, so ties and draws match those of a masked row.
    const ids = allowedIds(s.mask, V), l = penalize(logits, s), sub = new Float32Array(ids.length);
    for (let i = 0; i < ids.length; i++) sub[i] = l[ids[i]];
    token = ids[pick(k, sub, s)];
  } else token = pick(k, penalize(logits, s), s);
  if (s.logprobs === null) return { token };
  const lp = new Float32Array(V);
  k.logSoftmax(lp, logits, 1, V);
  return { token, logprob: lp[token], top: topLogprobs(lp, s.logprobs) };
}
