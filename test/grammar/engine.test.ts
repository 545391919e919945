// Constrained decoding through the engine on real models: greedy (the argmax path must respect the
// mask) on the random-weight tiny-dsv3, sampling at temperature 1.0, and speculative decoding on
// fortune-dsv3 (constrained sequences do not draft), every output valid under its grammar.
import { describe, expect, test } from "bun:test";
import Ajv from "ajv";
import { DirectBackend } from "../../src/engine/direct.ts";
import { ModelEngine } from "../../src/engine/engine.ts";
import type { SamplingParams } from "../../src/engine/types.ts";
import { compileJsonSchema, compileRegex, type Grammar, vocabFromTokenizer } from "../../src/grammar/index.ts";
import { loadTokenizer } from "../../src/tokenizer/index.ts";

const TINY = new URL("../fixtures/tiny-dsv3", import.meta.url).pathname;
const FORTUNE = new URL("../../models/fortune-dsv3", import.meta.url).pathname;
const ajv = new Ajv({ strict: false });
const SCHEMA = {
  type: "object",
  properties: { id: { type: "integer", minimum: 1, maximum: 500 }, label: { type: "string", maxLength: 8 }, xs: { type: "array", items: { type: "boolean" }, maxItems: 4 } },
  required: ["id", "label"],
  additionalProperties: false,
};

const params = (over: Partial<SamplingParams>): SamplingParams => ({
  temperature: 0, top_p: 1, top_k: 0, min_p: 0, presence_penalty: 0, frequency_penalty: 0, repetition_penalty: 1,
  seed: 0, max_tokens: 40, stop_token_ids: [], ignore_eos: false, logprobs: null, prompt_logprobs: false, ...over,
});

async function run(engine: ModelEngine, prompt: number[], p: SamplingParams) {
  const ids: number[] = [];
  let finish = "";
  for await (const ev of engine.generate({ id: "g", prompt_ids: prompt, params: p })) {
    if (ev.type === "token") ids.push(ev.id);
    if (ev.type === "done") finish = ev.finish_reason + (ev.error ?? "");
  }
  return { ids, finish };
}

async function setup(dir: string): Promise<{ tok: Awaited<ReturnType<typeof loadTokenizer>>; g: (s: object) => Grammar }> {
  const tok = await loadTokenizer(dir);
  const cfg = await Bun.file(`${dir}/config.json`).json();
  const v = vocabFromTokenizer(tok, cfg.vocab_size, [tok.eosId]);
  return { tok, g: (s) => compileJsonSchema(s, v) };
}

describe("constrained decoding in the engine", () => {
  test("greedy on random weights: the masked argmax gives a valid object (unconstrained, it is not JSON)", async () => {
    const { tok, g } = await setup(TINY);
    const engine = new ModelEngine(new DirectBackend(TINY, { pages: 64, pageSize: 16 }));
    try {
      const prompt = tok.encode("Hello", { addSpecialTokens: true });
      const free = await run(engine, prompt, params({ max_tokens: 20 }));
      expect(() => JSON.parse(tok.decode(free.ids))).toThrow();
      const r = await run(engine, prompt, params({ constraint: g(SCHEMA), ignore_eos: true }));
      expect(r.finish).toBe("stop");
      expect(ajv.validate(SCHEMA, JSON.parse(tok.decode(r.ids)))).toBe(true);
    } finally {
      await engine.close();
    }
  }, 60_000);

  test("temperature 1.0, 16 seeds, and with speculative decoding on (constrained sequences do not draft)", async () => {
    const { tok, g } = await setup(FORTUNE);
    const backend = new DirectBackend(FORTUNE, { pages: 128, pageSize: 16, mtp: true });
    const engine = new ModelEngine(backend, { speculative: { k: 2, always: true } });
    try {
      const prompt = tok.encode("The answer:", { addSpecialTokens: true });
      const grammar = g(SCHEMA);
      const runs = await Promise.all(Array.from({ length: 16 }, (_, seed) => run(engine, prompt, params({ temperature: 1, seed, constraint: grammar }))));
      for (const r of runs) {
        expect(r.finish).toBe("stop");
        expect(ajv.validate(SCHEMA, JSON.parse(tok.decode(r.ids)))).toBe(true);
      }
      expect(engine.stats().spec_drafted_total).toBe(0);
      const v = vocabFromTokenizer(tok, backend.config.vocab_size, [tok.eosId]);
      const re = await run(engine, prompt, params({ temperature: 1, seed: 3, constraint: compileRegex("[a-z]+ [0-9]{2}", v) }));
      expect(tok.decode(re.ids)).toMatch(/^[a-z]+ [0-9]{2}$/);
    } finally {
      await engine.close();
    }
  }, 120_000);
});
