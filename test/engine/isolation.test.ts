// Isolation (issue 13, item 4): an error that belongs to one sequence ends that sequence alone;
// its neighbours in the same batch go on and give the golden tokens.
import { describe, expect, test } from "bun:test";
import { DirectBackend } from "../../src/engine/direct.ts";
import { ModelEngine } from "../../src/engine/engine.ts";
import type { SeqResult, SeqWork } from "../../src/protocol.ts";
import type { SamplingParams, TokenEvent } from "../../src/engine/types.ts";
import { greedy } from "../golden/suite.ts";
import { Golden } from "../helpers/golden.ts";

const model = new URL("../fixtures/tiny-dsv3", import.meta.url).pathname;
const g = new Golden(model);
const want = g.json.batch.completions as number[][];
const prompts = [g.ids("batch.prompt0"), g.ids("batch.prompt1")];

/** Runs a request to the end: its tokens and its last event. */
async function run(engine: ModelEngine, id: string, prompt: number[], params: SamplingParams) {
  const ids: number[] = [];
  let done: Extract<TokenEvent, { type: "done" }> | undefined;
  for await (const ev of engine.generate({ id, prompt_ids: prompt, params }))
    if (ev.type === "token") ids.push(ev.id);
    else if (ev.type === "done") done = ev;
  return { ids, done: done! };
}

/** A kernel status caused by one sequence's parameters, where the runner cannot separate the
 * sequences (the whole step fails): modelled by failing every step that contains `poison`. */
class PoisonedBackend extends DirectBackend {
  steps = 0;
  override step(replica: number, work: SeqWork[]): Promise<SeqResult[]> {
    this.steps++;
    if (work.some((w) => w.seq.startsWith("poison~"))) return Promise.reject(new Error("moe_kernel: bad parameter (status -2)"));
    return super.step(replica, work);
  }
}

describe("one bad sequence does not fail its neighbours", () => {
  test("temperature 1e-50 is greedy, and the batch it shares gives the golden tokens", async () => {
    const engine = new ModelEngine(new DirectBackend(model, { pages: 64, pageSize: 16 }));
    try {
      const n = want[0].length;
      const runs = [
        run(engine, "a", prompts[0], greedy(n)),
        run(engine, "tiny", prompts[0], { ...greedy(n), temperature: 1e-50, seed: 1 }),
        run(engine, "b", prompts[1], greedy(n)),
        run(engine, "c", prompts[0], greedy(n)),
      ];
      const [a, tiny, b, c] = await Promise.all(runs);
      for (const r of [a, tiny, b, c]) expect(r.done.finish_reason).toBe("length");
      expect(a.ids).toEqual(want[0]);
      expect(tiny.ids).toEqual(want[0]);
      expect(b.ids).toEqual(want[1]);
      expect(c.ids).toEqual(want[0]);
    } finally {
      await engine.close();
    }
  }, 60_000);

  test("a sampling failure is that sequence's own: the runner answers the others", async () => {
    const backend = new DirectBackend(model, { pages: 64, pageSize: 16 });
    const spec = { temperature: 1, top_p: 1, top_k: 0, min_p: 0, presence_penalty: 0, frequency_penalty: 0, repetition_penalty: 1, logprobs: null, output: [] };
    const work: SeqWork[] = [
      { seq: "ok", tokens: prompts[0], start: 0, pages: [0, 1], sample: { ...spec, temperature: 0, u: 0.5 } },
      { seq: "bad", tokens: prompts[1], start: 0, pages: [2, 3], sample: { ...spec, u: 1.5 } }, // u outside [0, 1)
      { seq: "ok2", tokens: prompts[1], start: 0, pages: [4, 5], sample: { ...spec, temperature: 0, u: 0.5 } },
    ];
    const [ok, bad, ok2] = await backend.step(0, work);
    expect(bad.error).toMatch(/uniform draw/);
    expect(bad.sampled).toBeUndefined();
    expect(ok.error).toBeUndefined();
    expect(ok.sampled!.token).toBe(want[0][0]);
    expect(ok2.sampled!.token).toBe(want[1][0]);
  }, 60_000);

  test("a step that fails as a whole is retried in halves: only the culprit ends, with an error", async () => {
    const backend = new PoisonedBackend(model, { pages: 64, pageSize: 16 });
    const engine = new ModelEngine(backend);
    try {
      const n = want[0].length;
      const runs = ["a", "b", "poison", "c", "d"].map((id, i) => run(engine, id, prompts[i % 2], greedy(n)));
      const [a, b, poison, c, d] = await Promise.all(runs);
      expect(poison.done.finish_reason).toBe("error");
      expect(poison.done.error).toMatch(/bad parameter/);
      expect(poison.done.error_code).toBe("internal");
      expect(a.ids).toEqual(want[0]);
      expect(b.ids).toEqual(want[1]);
      expect(c.ids).toEqual(want[1]);
      expect(d.ids).toEqual(want[0]);
      for (const r of [a, b, c, d]) expect(r.done.finish_reason).toBe("length");
      expect(engine.stats().kv_blocks_used).toBe(0);
    } finally {
      await engine.close();
    }
  }, 60_000);
});

describe("a malformed result ends its own sequence", () => {
  test("a result without its sampled token: that sequence errors, the others go on", async () => {
    class Dropping extends DirectBackend {
      override async step(replica: number, work: SeqWork[]): Promise<SeqResult[]> {
        const r = await super.step(replica, work);
        return r.map((x) => (x.seq.startsWith("odd~") && x.sampled ? { ...x, sampled: undefined } : x));
      }
    }
    const engine = new ModelEngine(new Dropping(model, { pages: 64, pageSize: 16 }));
    try {
      const n = want[0].length;
      const [a, odd, b] = await Promise.all([run(engine, "a", prompts[0], greedy(n)), run(engine, "odd", prompts[1], greedy(n)), run(engine, "b", prompts[1], greedy(n))]);
      expect(a.ids).toEqual(want[0]);
      expect(b.ids).toEqual(want[1]);
      expect(odd.done.finish_reason).toBe("error");
    } finally {
      await engine.close();
    }
  }, 60_000);
});

describe("request ids are the caller's, not the cache's", () => {
  test("two concurrent requests with the same id keep their own caches", async () => {
    const engine = new ModelEngine(new DirectBackend(model, { pages: 64, pageSize: 16 }));
    try {
      const n = want[0].length;
      const [a, b] = await Promise.all([run(engine, "same", prompts[0], greedy(n)), run(engine, "same", prompts[1], greedy(n))]);
      expect(a.ids).toEqual(want[0]);
      expect(b.ids).toEqual(want[1]);
      expect(engine.stats().kv_blocks_used).toBe(0);
    } finally {
      await engine.close();
    }
  }, 60_000);
});
