// Speculative decoding with the model's own MTP module: greedy output is token-for-token the
// output without speculation (batch 1 and concurrent batches, k = 1 and 2, in-thread and under each
// in-process scaling config), acceptance on the trained default model, seeded sampling, and the
// pause of drafting when drafts keep being rejected.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeModelCommand } from "../../src/commands/make-model.ts";
import type { ModelBackend } from "../../src/engine/backend.ts";
import { ModelEngine } from "../../src/engine/engine.ts";
import { createBackend } from "../../src/commands/backend.ts";
import type { SamplingParams } from "../../src/engine/types.ts";

const root = new URL("../..", import.meta.url).pathname;
const TINY = `${root}test/fixtures/tiny-dsv3`, FORTUNE = `${root}models/fortune-dsv3`;
const SINGLE = `${root}configs/scaling/single-worker.yaml`;
const SCALINGS = ["direct", SINGLE, ...["split-workers", "experts-4-redundant", "inprocess"].map((n) => `${root}configs/scaling/${n}.yaml`)];

const params = (max: number, o: Partial<SamplingParams> = {}): SamplingParams => ({
  temperature: 0, top_p: 1, top_k: 0, min_p: 0, presence_penalty: 0, frequency_penalty: 0, repetition_penalty: 1,
  seed: 0, max_tokens: max, stop_token_ids: [], ignore_eos: true, logprobs: null, prompt_logprobs: false, ...o,
});

let n = 0;
async function run(e: ModelEngine, prompt: number[], p: SamplingParams): Promise<number[]> {
  const ids: number[] = [];
  for await (const ev of e.generate({ id: `r${n++}`, prompt_ids: prompt, params: p })) {
    if (ev.type === "token") ids.push(ev.id);
    if (ev.type === "done" && ev.finish_reason === "error") throw new Error(ev.error);
  }
  return ids;
}

const PROMPTS = [
  [0, 5, 17, 42, 99, 7, 23, 64],
  [0, 300, 12, 8],
  [0, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96],
  [0, 1],
];

for (const [model, name] of [[TINY, "tiny-dsv3"], [FORTUNE, "fortune-dsv3"]] as const) {
  for (const scaling of SCALINGS) {
    describe(`${name} / ${scaling.split("/").pop()!.replace(".yaml", "")}`, () => {
      let backend: ModelBackend;
      const want: number[][] = [];
      const MAX = 24;
      beforeAll(async () => {
        backend = await createBackend({ model, scaling, mtp: true, kvTokens: 2048 });
        const plain = new ModelEngine(backend);
        for (const p of PROMPTS) want.push(await run(plain, p, params(MAX)));
      });
      afterAll(() => backend.close());

      for (const k of [1, 2]) {
        test(`greedy k=${k}: identical tokens at batch 1 and in a concurrent batch`, async () => {
          // always: tiny-dsv3's random weights reject most drafts, which would pause drafting
          const spec = new ModelEngine(backend, { speculative: { k, always: true } });
          expect(await run(spec, PROMPTS[0], params(MAX))).toEqual(want[0]);
          const got = await Promise.all(PROMPTS.map((p) => run(spec, p, params(MAX))));
          expect(got).toEqual(want);
          const s = spec.stats();
          expect(s.spec_drafted_total!).toBeGreaterThan(0);
          expect(s.spec_accepted_total!).toBeLessThanOrEqual(s.spec_drafted_total!);
        });
      }

      test("greedy k=2 with chunked prefill (small step budget) is still identical", async () => {
        const spec = new ModelEngine(backend, { speculative: { k: 2, always: true }, maxBatchTokens: 5 });
        expect(await Promise.all(PROMPTS.map((p) => run(spec, p, params(MAX))))).toEqual(want);
      });
    });
  }
}

test("bench-s (a bench-size random FP8 checkpoint): greedy k=1,3 identical at batch 1 and in a batch", async () => {
  const dir = mkdtempSync(join(tmpdir(), "moe-spec-bench-s-"));
  try {
    await makeModelCommand(["--preset", "bench-s", "--format", "fp8", "--out", dir, "--quiet"]);
    const backend = await createBackend({ model: dir, scaling: "direct", mtp: true, kvTokens: 2048 });
    try {
      const plain = new ModelEngine(backend);
      const want = await Promise.all(PROMPTS.map((p) => run(plain, p, params(32))));
      for (const k of [1, 3]) {
        const spec = new ModelEngine(backend, { speculative: { k, always: true } });
        expect(await run(spec, PROMPTS[0], params(32))).toEqual(want[0]);
        expect(await Promise.all(PROMPTS.map((p) => run(spec, p, params(32))))).toEqual(want);
      }
    } finally {
      await backend.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

describe("tiny-dsv3 (random weights): drafts that keep being rejected", () => {
  test("pause drafting, then probe now and then; the output is still identical", async () => {
    const backend = await createBackend({ model: TINY, scaling: "direct", mtp: true, kvTokens: 2048 });
    try {
      const want = await run(new ModelEngine(backend), PROMPTS[0], params(96));
      const always = new ModelEngine(backend, { speculative: { k: 1, always: true } });
      expect(await run(always, PROMPTS[0], params(96))).toEqual(want);
      const a = always.stats();
      expect(a.spec_accepted_total! / a.spec_drafted_total!).toBeLessThan(0.3); // what pauses drafting
      const spec = new ModelEngine(backend, { speculative: { k: 1 } });
      expect(await run(spec, PROMPTS[0], params(96))).toEqual(want);
      const s = spec.stats();
      expect(s.spec_drafted_total!).toBeGreaterThanOrEqual(3); // the evidence, then probes
      expect(s.spec_drafted_total!).toBeLessThan(a.spec_drafted_total! / 4);
    } finally {
      await backend.close();
    }
  });
});

describe("fortune-dsv3 acceptance and sampling", () => {
  let backend: ModelBackend;
  beforeAll(async () => (backend = await createBackend({ model: FORTUNE, scaling: "direct", mtp: true, kvTokens: 2048 })));
  afterAll(() => backend.close());

  test("greedy acceptance with one draft token is high (the MTP agrees with the model ~80%)", async () => {
    const spec = new ModelEngine(backend, { speculative: { k: 1 } });
    await Promise.all(PROMPTS.slice(0, 2).map((p) => run(spec, p, params(64))));
    const s = spec.stats();
    expect(s.spec_accepted_total! / s.spec_drafted_total!).toBeGreaterThan(0.6);
  });

  test("seeded sampling with speculation runs, is reproducible, and stays in the vocabulary", async () => {
    const V = backend.config.vocab_size;
    for (const k of [1, 3]) {
      const spec = new ModelEngine(backend, { speculative: { k } });
      const p = params(32, { temperature: 0.8, top_p: 0.95, seed: 7 });
      const a = await run(spec, PROMPTS[0], p), b = await run(spec, PROMPTS[0], p);
      expect(a.length).toBe(32);
      expect(a).toEqual(b);
      for (const t of a) expect(t >= 0 && t < V).toBe(true);
    }
  });

  test("greedy k=1,3 stays identical when a small KV cache preempts and recomputes sequences", async () => {
    const prompts = Array.from({ length: 6 }, (_, i) => [0, 10 + i, 20 + i, 30, 40 + i, 50]);
    const plain = new ModelEngine(backend);
    const want = await Promise.all(prompts.map((p) => run(plain, p, params(40))));
    const small = await createBackend({ model: FORTUNE, scaling: "direct", mtp: true, pages: 12, pageSize: 8 });
    try {
      for (const k of [1, 3]) {
        const spec = new ModelEngine(small, { speculative: { k } });
        expect(await Promise.all(prompts.map((p) => run(spec, p, params(40))))).toEqual(want);
        expect(spec.stats().kv_blocks_used).toBe(0);
      }
    } finally {
      await small.close();
    }
  });

  test("drafting goes on while drafts are accepted", async () => {
    const spec = new ModelEngine(backend, { speculative: { k: 1 } });
    const out = await run(spec, PROMPTS[0], params(64));
    const s = spec.stats(); // after the first token, each step emits 1 + its accepted drafts
    const steps = out.length - 1 - s.spec_accepted_total!;
    expect(s.spec_drafted_total!).toBeGreaterThanOrEqual(0.8 * steps); // short pauses at most
  });

  test("stops at max_tokens exactly even when drafts would run past it", async () => {
    const spec = new ModelEngine(backend, { speculative: { k: 3 } });
    for (const m of [1, 2, 5]) expect((await run(spec, PROMPTS[0], params(m))).length).toBe(m);
  });
});
