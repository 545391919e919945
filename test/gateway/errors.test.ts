// Every bad input gets an OpenAI-shaped 4xx (never a crash or a hang); engine refusals map to their
// statuses; auth, body limit and deadline.
import { describe, expect, test } from "bun:test";
import { EngineError } from "../../src/engine/types.ts";
import { harness, MODEL, post, sseEvents, until } from "./helpers.ts";

const chat = { model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 2 };
const comp = { model: MODEL, prompt: "hi", max_tokens: 2 };

async function expectError(res: Response, status: number, param?: string | null, code?: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toStartWith("application/json");
  const body: any = await res.json();
  expect(Object.keys(body.error).sort()).toEqual(["code", "message", "param", "type"]);
  expect(typeof body.error.message).toBe("string");
  if (param !== undefined) expect(body.error.param).toBe(param);
  if (code !== undefined) expect(body.error.code).toBe(code);
  return body.error;
}

describe("bad requests", () => {
  test("malformed JSON, empty body, not an object", async () => {
    const h = await harness();
    await expectError(await post(h, "/v1/chat/completions", "{\"messages\": ["), 400, null, "invalid_json");
    await expectError(await post(h, "/v1/completions", ""), 400, null, "invalid_json");
    await expectError(await post(h, "/v1/completions", "[1,2]"), 400);
    await expectError(await post(h, "/v1/completions", "42"), 400);
  });

  test("wrong types name the parameter", async () => {
    const h = await harness();
    await expectError(await post(h, "/v1/chat/completions", { ...chat, messages: "hi" }), 400, "messages");
    await expectError(await post(h, "/v1/chat/completions", { ...chat, messages: [] }), 400, "messages");
    await expectError(await post(h, "/v1/chat/completions", { ...chat, messages: [{ role: "wizard", content: "x" }] }), 400, "messages[0].role");
    await expectError(await post(h, "/v1/chat/completions", { ...chat, max_tokens: "10" }), 400, "max_tokens");
    await expectError(await post(h, "/v1/chat/completions", { ...chat, stream: "yes" }), 400, "stream");
    await expectError(await post(h, "/v1/chat/completions", { ...chat, stop: [1] }), 400, "stop");
    await expectError(await post(h, "/v1/completions", { ...comp, prompt: 5 }), 400, "prompt");
    await expectError(await post(h, "/v1/completions", { ...comp, prompt: [] }), 400, "prompt");
    await expectError(await post(h, "/v1/completions", { ...comp, logprobs: true }), 400, "logprobs");
    await expectError(await post(h, "/v1/completions", { model: MODEL }), 400, "prompt");
  });

  test("out-of-range values", async () => {
    const h = await harness();
    const cases: [Record<string, unknown>, string][] = [
      [{ temperature: -0.1 }, "temperature"], [{ temperature: 2.5 }, "temperature"], [{ top_p: 0 }, "top_p"],
      [{ top_p: 1.5 }, "top_p"], [{ top_k: -2 }, "top_k"], [{ min_p: 2 }, "min_p"], [{ n: 0 }, "n"], [{ n: 1000 }, "n"],
      [{ max_tokens: 0 }, "max_tokens"], [{ max_tokens: 1.5 }, "max_tokens"], [{ presence_penalty: 3 }, "presence_penalty"],
      [{ frequency_penalty: -3 }, "frequency_penalty"], [{ repetition_penalty: 0 }, "repetition_penalty"],
      [{ seed: 0.5 }, "seed"], [{ logprobs: 21 }, "logprobs"], [{ stop_token_ids: [-1] }, "stop_token_ids[0]"],
      [{ stop_token_ids: [99999] }, "stop_token_ids"], [{ prompt: [0, 99999] }, "prompt"], [{ prompt: [0, -1] }, "prompt"],
      [{ prompt: Array(200).fill("a"), n: 2 }, "n"],
    ];
    for (const [extra, param] of cases) {
      const err = await expectError(await post(h, "/v1/completions", { ...comp, ...extra }), 400);
      expect(err.param).toStartWith(param);
    }
    await expectError(await post(h, "/v1/chat/completions", { ...chat, logprobs: true, top_logprobs: 21 }), 400, "top_logprobs");
    await expectError(await post(h, "/v1/chat/completions", { ...chat, top_logprobs: 2 }), 400, "top_logprobs");
    expect(h.engine.requests).toHaveLength(0);
  });

  test("unknown model is a 404", async () => {
    const h = await harness();
    await expectError(await post(h, "/v1/chat/completions", { ...chat, model: "gpt-4" }), 404, "model", "model_not_found");
    await expectError(await post(h, "/v1/completions", { ...comp, model: "gpt-4" }), 404, "model", "model_not_found");
  });

  test("a prompt longer than the context, or prompt + max_tokens over it, is a 400", async () => {
    const h = await harness();
    const long = Array.from({ length: 256 }, (_, i) => 10 + (i % 50));
    await expectError(await post(h, "/v1/completions", { ...comp, prompt: long }), 400, "prompt", "context_length_exceeded");
    await expectError(await post(h, "/v1/completions", { ...comp, prompt: [1, 2], max_tokens: 255 }), 400, "max_tokens", "context_length_exceeded");
    const content = "word ".repeat(400);
    await expectError(await post(h, "/v1/chat/completions", { ...chat, messages: [{ role: "user", content }] }), 400, "messages", "context_length_exceeded");
    expect(h.engine.requests).toHaveLength(0);
  });

  test("parameters we cannot honour are refused by name; harmless extras are accepted", async () => {
    const h = await harness();
    const tool = { type: "function", function: { name: "f", parameters: {} } };
    const refused: [string, object, string][] = [
      ["/v1/chat/completions", { functions: [tool.function] }, "functions"],
      ["/v1/chat/completions", { logit_bias: { "5": 10 } }, "logit_bias"],
      ["/v1/chat/completions", { stream_options: { include_usage: true } }, "stream_options"],
      ["/v1/chat/completions", { messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "x" } }] }] }, "messages[0].content[0].type"],
      ["/v1/completions", { best_of: 3 }, "best_of"],
      ["/v1/completions", { suffix: "end" }, "suffix"],
    ];
    for (const [path, extra, param] of refused) {
      const base = path === "/v1/completions" ? comp : chat;
      await expectError(await post(h, path, { ...base, ...extra }), 400, param, "unsupported_parameter");
    }
    const accepted: [string, object][] = [
      ["/v1/chat/completions", { user: "u", metadata: { k: "v" }, store: false, tools: [tool], tool_choice: "none", response_format: { type: "text" } }],
      // structured output is served now (test/gateway/structured.test.ts)
      ["/v1/chat/completions", { response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "object" } } } }],
      ["/v1/completions", { user: "u", best_of: 1, suffix: "", some_future_field: 1 }],
    ];
    for (const [path, extra] of accepted) {
      const base = path === "/v1/completions" ? comp : chat;
      expect((await post(h, path, { ...base, ...extra })).status).toBe(200);
    }
  });

  test("unknown routes are OpenAI-shaped 404s", async () => {
    const h = await harness();
    await expectError(await h.app.request("/v1/embeddings", { method: "POST", body: "{}" }), 404, null, "not_found");
  });
});

describe("engine refusals and failures", () => {
  const cases: [EngineError, number, string][] = [
    [new EngineError("full", "queue_full", 3), 429, "rate_limit_error"],
    [new EngineError("too long", "prompt_too_long"), 400, "invalid_request_error"],
    [new EngineError("down", "unavailable"), 503, "service_unavailable_error"],
    [new EngineError("oops", "internal"), 500, "server_error"],
  ];
  for (const [err, status, type] of cases) {
    test(`${err.code} -> ${status}`, async () => {
      const h = await harness({ refuse: err });
      for (const stream of [false, true]) {
        const res = await post(h, "/v1/chat/completions", { ...chat, stream });
        const e = await expectError(res, status);
        expect(e.type).toBe(type);
        if (status === 429) expect(res.headers.get("retry-after")).toBe("3");
      }
    });
  }

  test("a full queue answers 429 with Retry-After while earlier requests run", async () => {
    const h = await harness({ maxRunning: 1, maxWaiting: 0, stepMs: 10 });
    const first = post(h, "/v1/completions", { ...comp, max_tokens: 20 });
    await until(() => h.engine.stats().running === 1);
    const res = await post(h, "/v1/completions", comp);
    await expectError(res, 429, null, "queue_full");
    expect(res.headers.get("retry-after")).toBe("2");
    expect((await first).status).toBe(200);
  });

  test("when one of n choices is refused, the others are cancelled even if still queued", async () => {
    const h = await harness({ maxRunning: 1, maxWaiting: 1, stepMs: 10 });
    const busy = post(h, "/v1/completions", { ...comp, max_tokens: 30 });
    await until(() => h.engine.stats().running === 1);
    const res = await post(h, "/v1/completions", { ...comp, n: 3, max_tokens: 30 });
    await expectError(res, 429, null, "queue_full");
    expect(h.engine.stats()).toMatchObject({ running: 1, waiting: 0 }); // the queued sibling left the queue
    expect((await busy).status).toBe(200);
    expect(h.engine.stats()).toMatchObject({ running: 0, waiting: 0 });
  });

  test("an engine error before the end: 500 whole, an error event in a stream", async () => {
    const h = await harness({ failAfterTokens: 3 });
    await expectError(await post(h, "/v1/completions", { ...comp, max_tokens: 10 }), 500);
    const { events, done } = await sseEvents(await post(h, "/v1/completions", { ...comp, max_tokens: 10, stream: true }));
    expect(done).toBe(true);
    expect(events.at(-1).error.type).toBe("server_error");
  });
});

describe("middleware", () => {
  test("API keys: missing or wrong is 401, right passes; /health stays open, /metrics needs a key", async () => {
    const h = await harness({}, { apiKeys: ["k1", "k2"] });
    await expectError(await post(h, "/v1/completions", comp), 401, null, "invalid_api_key");
    await expectError(await post(h, "/v1/completions", comp, { authorization: "Bearer nope" }), 401, null, "invalid_api_key");
    expect((await post(h, "/v1/completions", comp, { authorization: "Bearer k2" })).status).toBe(200);
    expect((await h.app.request("/v1/models", { headers: { authorization: "Bearer k1" } })).status).toBe(200);
    expect((await h.app.request("/health")).status).toBe(200);
    expect((await h.app.request("/health/live")).status).toBe(200);
    await expectError(await h.app.request("/metrics"), 401, null, "invalid_api_key");
    expect((await h.app.request("/metrics", { headers: { authorization: "Bearer k1" } })).status).toBe(200);
    const open = await harness({}, { apiKeys: ["k1"], metricsPublic: true });
    expect((await open.app.request("/metrics")).status).toBe(200);
  });

  test("bodies over the limit are a 413, with or without Content-Length", async () => {
    const h = await harness({}, { maxBodyBytes: 1024 });
    const big = { ...comp, prompt: "x".repeat(2000) };
    await expectError(await post(h, "/v1/completions", big, { "content-length": String(JSON.stringify(big).length) }), 413, null, "request_too_large");
    const bytes = new TextEncoder().encode(JSON.stringify(big));
    const stream = new ReadableStream({ start(c) { c.enqueue(bytes.slice(0, 1000)); c.enqueue(bytes.slice(1000)); c.close(); } });
    await expectError(await h.app.request("/v1/completions", { method: "POST", body: stream, duplex: "half" } as RequestInit), 413);
    expect((await post(h, "/v1/completions", comp)).status).toBe(200);
  });

  test("a stream past its deadline ends with a timeout error event and aborts its sequence", async () => {
    const h = await harness({ stepMs: 20 }, { requestTimeoutMs: 100 });
    const { events, done } = await sseEvents(await post(h, "/v1/completions", { ...comp, max_tokens: 200, ignore_eos: true, stream: true }));
    expect(done).toBe(true);
    expect(events.at(-1).error).toMatchObject({ type: "timeout_error", code: "timeout" });
    expect(h.engine.aborted).toHaveLength(1);
  });

  test("a request past its deadline is a 504 and its engine sequence is aborted", async () => {
    const h = await harness({ stepMs: 20 }, { requestTimeoutMs: 100 });
    await expectError(await post(h, "/v1/completions", { ...comp, max_tokens: 200, ignore_eos: true }), 504, null, "timeout");
    expect(h.engine.aborted).toHaveLength(1);
    expect(h.engine.stats().running).toBe(0);
  });
});
