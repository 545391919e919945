// The golden checks of a fixture against a model backend: every case the fixtures' README lists,
// within its tolerance. Shared by the direct backend and every scaling config.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import type { ModelBackend } from "../../src/engine/backend.ts";
import { ModelEngine } from "../../src/engine/engine.ts";
import type { SamplingParams } from "../../src/engine/types.ts";
import { openCheckpoint } from "../../src/checkpoint/checkpoint.ts";
import type { Kernels } from "../../src/kernels/kernels.ts";
import { buildBatch } from "../../src/model/batch.ts";
import { LocalMoE } from "../../src/model/moe.ts";
import { Transformer } from "../../src/model/transformer.ts";
import { Golden, compare } from "../helpers/golden.ts";

export interface Fixture {
  name: string;
  model: string; // checkpoint dir
  golden: string; // dir holding golden/
}

const root = new URL("../..", import.meta.url).pathname;

/** The bundled fixtures plus any given as MOE_GOLDEN="modelDir[:goldenDir],...". */
export function fixtures(): Fixture[] {
  const f: Fixture[] = [
    { name: "tiny-dsv3", model: `${root}test/fixtures/tiny-dsv3`, golden: `${root}test/fixtures/tiny-dsv3` },
    { name: "tiny-dsv3-bf16", model: `${root}test/fixtures/tiny-dsv3-bf16`, golden: `${root}test/fixtures/tiny-dsv3-bf16` },
    { name: "fortune-dsv3", model: `${root}models/fortune-dsv3`, golden: `${root}test/fixtures/fortune-dsv3` },
  ];
  for (const spec of (process.env.MOE_GOLDEN ?? "").split(",").filter(Boolean)) {
    const [model, golden = model] = spec.split(":");
    f.push({ name: model, model, golden });
  }
  return f.filter((x) => existsSync(`${x.golden}/golden/golden.safetensors`));
}

// Logits have RMS ~1; an fp32 runtime matches the fp32 reference to ~1e-5.
const ATOL = 1e-4, RTOL = 1e-4;

export function expectClose(a: ArrayLike<number>, b: ArrayLike<number>, what: string, atol = ATOL, rtol = RTOL) {
  const r = compare(a, b, atol, rtol);
  if (!r.ok) throw new Error(`${what}: |diff| ${r.maxAbs} exceeds ${atol} + ${rtol}*|ref| (worst at ${r.at}, ${a[r.at]} vs ${b[r.at]})`);
}

export const greedy = (max: number): SamplingParams => ({
  temperature: 0, top_p: 1, top_k: 0, min_p: 0, presence_penalty: 0, frequency_penalty: 0, repetition_penalty: 1,
  seed: null, max_tokens: max, stop_token_ids: [], ignore_eos: true, logprobs: null, prompt_logprobs: false,
});

export async function collect(engine: ModelEngine, id: string, prompt: number[], params: SamplingParams): Promise<number[]> {
  const ids: number[] = [];
  for await (const ev of engine.generate({ id, prompt_ids: prompt, params }))
    if (ev.type === "token") ids.push(ev.id);
    else if (ev.type === "done" && ev.finish_reason === "error") throw new Error(ev.error);
  return ids;
}

const pagesFor = (n: number, pageSize: number, first = 0) => Array.from({ length: Math.ceil(n / pageSize) }, (_, i) => first + i);

export function goldenSuite(label: string, fx: Fixture, make: (fx: Fixture) => Promise<ModelBackend>) {
  describe(`${label}: ${fx.name}`, () => {
    let backend: ModelBackend;
    let g: Golden;
    beforeAll(async () => {
      g = new Golden(fx.golden);
      backend = await make(fx);
    });
    afterAll(async () => backend?.close());

    test("prefill logits of every prompt length", async () => {
      for (const n of [1, 7, 33, 150]) {
        if (!g.has(`prefill.len${n}.tokens`)) continue;
        const tokens = g.ids(`prefill.len${n}.tokens`);
        const [r] = await backend.step(0, [{ seq: "p", tokens, start: 0, pages: pagesFor(n, backend.pageSize), logits: "last" }]);
        expectClose(r.logits!, g.f32(`prefill.len${n}.logits`), `prefill len ${n}`);
      }
    });

    test("step-by-step decode logits", async () => {
      const prompt = g.ids("decode.prompt"), fed = g.ids("decode.fed_tokens");
      const pages = pagesFor(prompt.length + fed.length, backend.pageSize);
      const [r0] = await backend.step(0, [{ seq: "d", tokens: prompt, start: 0, pages, logits: "last" }]);
      expectClose(r0.logits!, g.f32("decode.prefill_logits"), "decode prefill");
      const steps = g.f32("decode.step_logits"), V = backend.config.vocab_size;
      for (let j = 0; j < fed.length; j++) {
        const [r] = await backend.step(0, [{ seq: "d", tokens: [fed[j]], start: prompt.length + j, pages, logits: "last" }]);
        expectClose(r.logits!, steps.subarray(j * V, (j + 1) * V), `decode step ${j}`);
      }
    });

    test("batched greedy continuations, token for token", async () => {
      const engine = new ModelEngine(backend);
      const want = g.json.batch.completions as number[][];
      const prompts = [g.ids("batch.prompt0"), g.ids("batch.prompt1")];
      const got = await Promise.all(prompts.map((p, i) => collect(engine, `b${i}`, p, greedy(want[i].length))));
      expect(got).toEqual(want);
    });

    test("MTP logits (h after model.norm)", async () => {
      if (!backend.mtpLogits || !g.has("mtp.logits")) return;
      const tokens = g.ids("mtp.tokens");
      const m = await backend.mtpLogits(tokens, pagesFor(tokens.length, backend.pageSize));
      expectClose(m, g.f32("mtp.logits"), "mtp logits");
    });
  });
}

/** The router's choices on `router.tokens`: per MoE layer and token, the same expert set as the
 * reference and the same weights (ids in any order). */
export async function expectRouting(fx: Fixture, k: Kernels): Promise<void> {
  const g = new Golden(fx.golden), ck = openCheckpoint(fx.model), c = ck.config, K = c.num_experts_per_tok;
  const model = new Transformer(ck, c, k), moe = new LocalMoE(ck, c, k);
  const tokens = g.ids("router.tokens"), routes = new Map<number, { ids: Int32Array; weights: Float32Array }>();
  moe.onRouting = (l, r) => routes.set(l, r);
  const pages = Array.from({ length: 16 }, (_, i) => i);
  await model.forward(buildBatch([{ tokens, start: 0, pages }], 16), model.newCaches(16, 16), moe.routed);
  for (const l of g.json.router.moe_layers as number[]) {
    const wantIds = g.ids(`router.layer${l}.expert_ids`), wantW = g.f32(`router.layer${l}.weights`), got = routes.get(l)!;
    for (let t = 0; t < tokens.length; t++) {
      const byId = (ids: ArrayLike<number>, w: ArrayLike<number>) =>
        new Map(Array.from({ length: K }, (_, j) => [ids[t * K + j], w[t * K + j]]));
      const want = byId(wantIds, wantW), have = byId(got.ids, got.weights);
      expect([...have.keys()].sort((a, b) => a - b)).toEqual([...want.keys()].sort((a, b) => a - b));
      for (const [e, w] of want) expect(Math.abs(have.get(e)! - w)).toBeLessThan(1e-5);
    }
  }
}
