// The draft kernels (int8 matmuls for the MTP module while it drafts): close to the exact
// kernels, exact wherever they do not apply, and drafting the MTP module's own argmax nearly always.
import { expect, test } from "bun:test";
import { openCheckpoint } from "../../src/checkpoint/checkpoint.ts";
import { draftKernels } from "../../src/kernels/draft.ts";
import { cpuKernels } from "../../src/kernels/kernels.ts";
import { buildBatch } from "../../src/model/batch.ts";
import { loadExpertWeights } from "../../src/model/mlp.ts";
import { LocalMoE } from "../../src/model/moe.ts";
import { StepRunner } from "../../src/model/runner.ts";

const FORTUNE = new URL("../../models/fortune-dsv3", import.meta.url).pathname;
const ck = openCheckpoint(FORTUNE), k = cpuKernels(), dk = draftKernels(k);
const D = ck.config.hidden_size, I = ck.config.intermediate_size;
const x = Float32Array.from({ length: 3 * D }, (_, i) => Math.sin(i * 0.37) + 0.1 * Math.cos(i * 1.3));

/** max |a - b| over the scale of the exact result (its largest magnitude). */
function relErr(a: Float32Array, b: Float32Array): number {
  let e = 0, m = 0;
  for (let i = 0; i < a.length; i++) { e = Math.max(e, Math.abs(a[i] - b[i])); m = Math.max(m, Math.abs(b[i])); }
  return e / m;
}

test("linear: int8 close to the exact FP8 and BF16 matmuls; other shapes and strides stay exact", () => {
  for (const name of ["model.layers.1.self_attn.q_a_proj.weight", "lm_head.weight"]) {
    const info = ck.info(name), w = ck.weight(name, info.shape), N = info.shape[0];
    const want = new Float32Array(3 * N), got = new Float32Array(3 * N);
    k.linear(want, x, w, 3);
    dk.linear(got, x, w, 3);
    expect(relErr(got, want)).toBeLessThan(0.03);
    expect(got).not.toEqual(want); // really the int8 path
    dk.linear(got, x, w, 3, { ldo: N }); // explicit strides: the exact kernel
    expect(got).toEqual(want);
  }
});

test("experts: one expert over every row, and routed groups, run int8 and accumulate", () => {
  const e = loadExpertWeights(ck, "model.layers.0.mlp", D, I);
  const all = { offsets: Int32Array.from([0, 3]), rows: Int32Array.from([0, 1, 2]), rw: Float32Array.from([1, 1, 1]) };
  const want = new Float32Array(3 * D).fill(0.5), got = new Float32Array(3 * D).fill(0.5);
  k.experts(want, x, all, [e], 3, D, I);
  dk.experts(got, x, all, [e], 3, D, I);
  expect(relErr(got, want)).toBeLessThan(0.03);
  const some = { offsets: Int32Array.from([0, 2]), rows: Int32Array.from([2, 0]), rw: Float32Array.from([0.3, 0.7]) };
  want.fill(0); got.fill(0);
  k.experts(want, x, some, [e], 3, D, I);
  dk.experts(got, x, some, [e], 3, D, I);
  expect(relErr(got, want)).toBeLessThan(0.05);
  expect(got).not.toEqual(want);
  // More rows than a decode step (a prompt chunk): the exact kernel.
  const T = 12, x12 = Float32Array.from({ length: T * D }, (_, i) => Math.sin(i * 0.11));
  const every = { offsets: Int32Array.from([0, T]), rows: Int32Array.from({ length: T }, (_, i) => i), rw: new Float32Array(T).fill(1) };
  const want12 = new Float32Array(T * D), got12 = new Float32Array(T * D);
  k.experts(want12, x12, every, [e], T, D, I);
  dk.experts(got12, x12, every, [e], T, D, I);
  expect(got12).toEqual(want12);
});

test("MOE_MTP_DRAFT=exact keeps the exact kernels", () => {
  process.env.MOE_MTP_DRAFT = "exact";
  try { expect(draftKernels(k)).toBe(k); } finally { delete process.env.MOE_MTP_DRAFT; }
});

test("fortune-dsv3: int8 drafts are the exact MTP argmax at nearly every position", async () => {
  const moe = new LocalMoE(ck, ck.config, k);
  const runner = new StepRunner(ck, k, { pages: 8, pageSize: 16, mtp: true });
  const V = ck.config.vocab_size, ids = Array.from({ length: 100 }, (_, i) => (i * 7919) % 4000 + 3);
  ids[0] = 0;
  const pages = Array.from({ length: 8 }, (_, i) => i);
  const [r] = await runner.run([{ seq: "s", tokens: ids, start: 0, pages, hidden: true }], moe.routed);
  const n = ids.length - 1, b = buildBatch([{ tokens: ids.slice(1), start: 0, pages }], 16);
  const h = r.hidden!.subarray(0, n * D), ex = new Int32Array(1), dr = new Int32Array(1);
  let same = 0;
  for (let i = 0; i < n; i++) { // one drafting row at a time, as decode drafts (int8 up to 8 rows)
    const row = Int32Array.from([i]);
    k.argmax(ex, (await runner.mtp!.forward(b, h, runner.mtpCache!, moe.routed, row)).logits, 1, V);
    k.argmax(dr, (await runner.mtp!.forward(b, h, runner.mtpCache!, moe.routed, row, "auto", true)).logits, 1, V);
    same += ex[0] === dr[0] ? 1 : 0;
  }
  expect(same / n).toBeGreaterThan(0.95);
});
