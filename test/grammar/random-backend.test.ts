// The engine's constrained path with a "model" that samples uniformly among the allowed tokens of
// each step's mask (whatever the weights could do): outputs valid across seeds, an end token the
// grammar allows ends the output even with ignore_eos (it is never emitted as text), and a
// grammar that cannot fit max_tokens is followed as far as it goes and ends "length".
import { describe, expect, test } from "bun:test";
import Ajv from "ajv";
import { ModelEngine } from "../../src/engine/engine.ts";
import type { ModelBackend } from "../../src/engine/backend.ts";
import { seededRandom } from "../../src/engine/sequence.ts";
import type { SamplingParams } from "../../src/engine/types.ts";
import { compileJsonSchema, compileRegex, sequence } from "../../src/grammar/index.ts";
import type { SeqResult, SeqWork } from "../../src/protocol.ts";
import { text, toyVocab } from "./drive.ts";

const vocab = toyVocab();
const EOS = vocab.end[0];

/** Picks uniformly among the mask's tokens (or token 0 without a mask), from the step's own draw. */
class MaskSampler implements ModelBackend {
  readonly config = { vocab_size: vocab.size, eos_ids: [EOS], max_position_embeddings: 4096, num_nextn_predict_layers: 0, bos_token_id: 0 } as unknown as ModelBackend["config"];
  readonly pageSize = 16;
  readonly pages = 512;
  readonly replicas = 1;
  async step(_replica: number, work: SeqWork[]): Promise<SeqResult[]> {
    return work.map((w) => {
      if (!w.sample) return { seq: w.seq };
      const m = w.sample.mask;
      if (!m) return { seq: w.seq, sampled: { token: 0 } };
      const ok: number[] = [];
      for (let t = 0; t < vocab.size; t++) if ((m[t >>> 5] >>> (t & 31)) & 1) ok.push(t);
      return { seq: w.seq, sampled: { token: ok[Math.floor(seededRandom(Math.floor(w.sample.u * 2 ** 32))() * ok.length)] } };
    });
  }
  async expertLoad() { return {}; }
  async close() {}
}

const params = (over: Partial<SamplingParams>): SamplingParams => ({
  temperature: 1, top_p: 1, top_k: 0, min_p: 0, presence_penalty: 0, frequency_penalty: 0, repetition_penalty: 1,
  seed: 0, max_tokens: 64, stop_token_ids: [], ignore_eos: false, logprobs: null, prompt_logprobs: false, ...over,
});

async function run(engine: ModelEngine, p: SamplingParams) {
  const ids: number[] = [];
  let finish = "";
  for await (const ev of engine.generate({ id: "r", prompt_ids: [1, 2, 3], params: p })) {
    if (ev.type === "token") ids.push(ev.id);
    else if (ev.type === "done") finish = ev.finish_reason;
  }
  return { ids, finish };
}

describe("engine with a uniform-over-the-mask model", () => {
  test("JSON outputs validate over 100 seeds, batched", async () => {
    const schema = { type: "object", properties: { n: { type: "integer", minimum: -3, maximum: 3 }, s: { type: "string", maxLength: 5 }, l: { type: "array", items: { type: "boolean" }, maxItems: 3 } }, required: ["n", "s"], additionalProperties: false };
    const engine = new ModelEngine(new MaskSampler()), g = compileJsonSchema(schema, vocab), ajv = new Ajv();
    const runs = await Promise.all(Array.from({ length: 100 }, (_, seed) => run(engine, params({ seed, constraint: g, max_tokens: 20 + (seed % 30) }))));
    for (const r of runs) {
      expect(r.finish).toBe("stop");
      expect(ajv.validate(schema, JSON.parse(text(vocab, r.ids)))).toBe(true);
    }
    await engine.close();
  });

  test("the end token a complete grammar allows ends the output, with ignore_eos too", async () => {
    const engine = new ModelEngine(new MaskSampler()), g = compileRegex("[0-9]+", vocab);
    let ended = 0;
    for (let seed = 0; seed < 60; seed++) {
      const r = await run(engine, params({ seed, constraint: g, ignore_eos: true, max_tokens: 30 }));
      expect(r.ids).not.toContain(EOS);
      expect(text(vocab, r.ids)).toMatch(/^[0-9]+$/);
      if (r.finish === "stop" && r.ids.length < 30) ended++;
    }
    expect(ended).toBeGreaterThan(0);
    await engine.close();
  });

  test("a grammar that throws ends its own sequence; its neighbour in the step goes on", async () => {
    const engine = new ModelEngine(new MaskSampler());
    let steps = 0;
    const broken = sequence([{ name: "broken", auto: {
      init: 0, accepting: () => false, minClose: () => 1, key: () => `k${steps}`,
      step: () => { if (++steps > 300) throw new Error("boom"); return 0; },
    } }], vocab);
    const [bad, good] = await Promise.all([
      run(engine, params({ constraint: broken, max_tokens: 50 })),
      run(engine, params({ constraint: compileRegex("[a-c]{20}", vocab), max_tokens: 50 })),
    ]);
    expect(bad.finish).toBe("error");
    expect(good.finish).toBe("stop");
    expect(text(vocab, good.ids)).toMatch(/^[a-c]{20}$/);
    await engine.close();
  });

  test("a grammar longer than max_tokens is followed and ends \"length\"", async () => {
    const engine = new ModelEngine(new MaskSampler()), g = compileRegex("a{10}", vocab);
    const r = await run(engine, params({ constraint: g, max_tokens: 4 }));
    expect(r.finish).toBe("length");
    expect(text(vocab, r.ids)).toMatch(/^a+$/);
    await engine.close();
  });
});
