// The sampler under a grammar's mask: greedy and sampled tokens are always allowed ones, even when
// the model's favourite is not; logprobs stay those of the raw distribution.
import { describe, expect, test } from "bun:test";
import { cpuKernels } from "../../src/kernels/kernels.ts";
import { allowedIds as idsOf, applyMask, plainGreedy, sample, type SampleSpec } from "../../src/model/sampler.ts";
import { seededRandom } from "../../src/engine/sequence.ts";

const k = cpuKernels();
const V = 1000;
const spec = (over: Partial<SampleSpec>): SampleSpec => ({
  temperature: 0, top_p: 1, top_k: 0, min_p: 0, presence_penalty: 0, frequency_penalty: 0, repetition_penalty: 1, u: 0.5, logprobs: null, output: [], ...over,
});

function maskOf(ids: number[]): Uint32Array {
  const m = new Uint32Array(Math.ceil(V / 32));
  for (const t of ids) m[t >>> 5] |= 1 << (t & 31);
  return m;
}

describe("masked sampling", () => {
  const rand = seededRandom(7);
  const logits = Float32Array.from({ length: V }, () => rand() * 10);
  const best = logits.indexOf(Math.max(...logits));
  const allowedIds = [3, 64, 95, 96, 97, 999].filter((t) => t !== best);
  const mask = maskOf(allowedIds);

  test("applyMask keeps exactly the allowed logits", () => {
    const m = applyMask(logits, mask);
    for (let t = 0; t < V; t++) expect(m[t]).toBe(allowedIds.includes(t) ? logits[t] : -Infinity);
    expect(() => applyMask(logits, new Uint32Array(mask.length))).toThrow();
  });

  test("the draw among the allowed tokens is the draw from a row masked to -Infinity", () => {
    expect([...idsOf(mask, V)]).toEqual([...allowedIds].sort((a, b) => a - b));
    const wide = maskOf(Array.from({ length: V }, (_, t) => t).filter((t) => t % 7 !== 0 && t !== best));
    for (const m of [mask, wide])
      for (let i = 0; i < 100; i++) {
        const s = spec({ temperature: 0.3 + (i % 5) * 0.4, u: rand(), top_k: i % 3 === 0 ? 0 : 40, top_p: i % 2 ? 1 : 0.8, min_p: i % 4 === 0 ? 0.05 : 0 });
        expect(sample(k, logits, { ...s, mask: m }).token).toBe(sample(k, applyMask(logits, m), s).token);
      }
  });

  test("greedy takes the best allowed token, not the argmax", () => {
    expect(plainGreedy(spec({ mask }))).toBe(false);
    const want = allowedIds.reduce((a, b) => (logits[b] > logits[a] ? b : a));
    expect(sample(k, logits, spec({ mask })).token).toBe(want);
    expect(sample(k, logits, spec({})).token).toBe(best);
    expect(sample(k, logits, spec({ mask: maskOf([...allowedIds, best]) })).token).toBe(best); // allowed: the plain argmax
  });

  test("temperature, top-k/top-p and penalties never leave the mask; logprobs are raw", () => {
    const lse = Math.log(logits.reduce((s, x) => s + Math.exp(x), 0));
    for (let i = 0; i < 200; i++) {
      const s = spec({ temperature: 1.5, u: rand(), top_k: i % 3 === 0 ? 0 : 50, top_p: i % 2 ? 1 : 0.5, repetition_penalty: 1.3, output: [3, 64], logprobs: 2, mask });
      const r = sample(k, logits, s);
      expect(allowedIds).toContain(r.token);
      expect(r.logprob!).toBeCloseTo(logits[r.token] - lse, 4);
      expect(r.top![0].id).toBe(best);
    }
  });
});
