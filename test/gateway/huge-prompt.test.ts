// Issue 13, item 6: a huge prompt must not stall anyone. One that cannot fit the context is refused
// from its byte length, untokenized; one that may fit is tokenized in a worker while /health and
// other streams keep answering.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { TextCodec } from "../../src/gateway/codec.ts";
import { TokenizerPool } from "../../src/tokenizer/pool.ts";
import { FakeEngine } from "./fake-engine.ts";
import { appAround, loadCodec, MODEL, MODEL_DIR, sseEvents } from "./helpers.ts";

type App = ReturnType<typeof appAround>;
const post = (app: App, path: string, body: unknown) =>
  app.request(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

const HUGE = "All work and no play makes Jack a dull boy. ".repeat(80_000); // ~3.5 MB

describe("huge prompts", () => {
  let codec: TextCodec;
  let pool: TokenizerPool;
  beforeAll(async () => {
    [codec, pool] = await Promise.all([loadCodec(), TokenizerPool.start(MODEL_DIR, 2)]);
  });
  afterAll(() => pool.close());

  test("a prompt whose bytes cannot fit the context is a 400 and is never tokenized", async () => {
    let encoded = 0;
    const counting: TextCodec = { ...codec, maxTokenBytes: codec.maxTokenBytes, encode: (t, o) => (encoded++, codec.encode(t, o)) };
    const engine = new FakeEngine({ script: [10, 11, 12] });
    const app = appAround(engine, counting);
    for (const [path, body] of [
      ["/v1/completions", { model: MODEL, prompt: HUGE }],
      ["/v1/completions", { model: MODEL, prompt: ["short", HUGE] }],
      ["/v1/chat/completions", { model: MODEL, messages: [{ role: "user", content: HUGE }] }],
    ] as const) {
      const res = await post(app, path, body);
      expect(res.status).toBe(400);
      const err = ((await res.json()) as any).error;
      expect(err.code).toBe("context_length_exceeded");
      expect(err.message).toContain("at least");
    }
    expect(encoded).toBe(1); // only "short"
    expect(engine.requests).toHaveLength(0);
  });

  test("while a huge prompt is tokenized, /health answers and another stream runs to its end", async () => {
    const engine = new FakeEngine({ script: codec.encode("Hello there", { addSpecialTokens: false }), stepMs: 1, info: { max_model_len: 10_000_000 } });
    const app = appAround(engine, codec, undefined, { encoder: pool });
    const huge = post(app, "/v1/completions", { model: MODEL, prompt: HUGE, max_tokens: 1 });
    const deadline = Date.now() + 30_000;
    while (pool.inFlight === 0 && Date.now() < deadline) await Bun.sleep(1);
    expect(pool.inFlight).toBe(1); // the huge prompt is being tokenized, in a worker

    const health = await app.request("/health");
    expect(health.status).toBe(200);
    const other = await sseEvents(await post(app, "/v1/completions", { model: MODEL, prompt: "hi", max_tokens: 5, stream: true }));
    expect(other.done).toBe(true);
    // both answered before the huge prompt got through the tokenizer to the engine
    expect(engine.requests.map((r) => r.prompt_ids.length)).toEqual([codec.encode("hi").length]);
    expect(pool.inFlight).toBe(1);

    const res = await huge;
    expect(res.status).toBe(200);
    expect(((await res.json()) as any).usage.prompt_tokens).toBeGreaterThan(100_000);
  }, 60_000);
});
