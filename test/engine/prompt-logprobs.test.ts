// Prompt logprobs (echo): computed by the runner next to the logits, so the step reply carries
// one number per prompt token instead of a vocabulary-wide row, and the gateway's thread does
// O(prompt) work. They must equal the log-softmax of the full logits, across prefill chunks.
import { describe, expect, test } from "bun:test";
import { DirectBackend } from "../../src/engine/direct.ts";
import { ModelEngine } from "../../src/engine/engine.ts";
import type { SeqResult, SeqWork } from "../../src/protocol.ts";
import { greedy } from "../golden/suite.ts";
import { Golden } from "../helpers/golden.ts";

const model = new URL("../fixtures/tiny-dsv3", import.meta.url).pathname;
const prompt = new Golden(model).ids("batch.prompt1");

/** Records what crosses the step boundary. */
class Recording extends DirectBackend {
  readonly sent: SeqWork[] = [];
  readonly got: SeqResult[] = [];
  override async step(replica: number, work: SeqWork[]): Promise<SeqResult[]> {
    this.sent.push(...work);
    const r = await super.step(replica, work);
    this.got.push(...r);
    return r;
  }
}

/** Reference: log-softmax of the full logits rows, in f64. */
async function reference(): Promise<number[]> {
  const b = new DirectBackend(model, { pages: 64, pageSize: 16 });
  const V = b.config.vocab_size;
  const pages = Array.from({ length: Math.ceil(prompt.length / 16) }, (_, i) => i);
  const [r] = await b.step(0, [{ seq: "ref", tokens: prompt, start: 0, pages, logits: "all" }]);
  const out: number[] = [];
  for (let j = 0; j + 1 < prompt.length; j++) {
    const row = r.logits!.subarray(j * V, (j + 1) * V);
    let m = -Infinity, z = 0;
    for (const x of row) m = Math.max(m, x);
    for (const x of row) z += Math.exp(x - m);
    out.push(row[prompt[j + 1]] - m - Math.log(z));
  }
  return out;
}

describe("prompt logprobs", () => {
  test("computed by the runner, across prefill chunks, equal to the log-softmax of the logits", async () => {
    const backend = new Recording(model, { pages: 64, pageSize: 16 });
    const engine = new ModelEngine(backend, { maxBatchTokens: 5 }); // chunks of 5 prompt tokens
    try {
      let got: (number | null)[] = [];
      for await (const ev of engine.generate({ id: "e", prompt_ids: prompt, params: { ...greedy(2), prompt_logprobs: true } }))
        if (ev.type === "prompt") got = ev.logprobs;
      const want = await reference();
      expect(got.length).toBe(prompt.length);
      expect(got[0]).toBeNull();
      got.slice(1).forEach((x, j) => expect(Math.abs((x as number) - want[j])).toBeLessThan(1e-4));
      // No vocabulary-wide rows crossed the step boundary.
      expect(backend.sent.filter((w) => w.logits).length).toBe(0);
      expect(backend.got.filter((r) => r.logits).length).toBe(0);
      expect(backend.sent.filter((w) => w.targets).length).toBeGreaterThan(1);
    } finally {
      await engine.close();
    }
  }, 60_000);
});
