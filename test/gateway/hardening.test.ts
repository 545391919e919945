// Issue 13, gateway holes: tiny sampling values (item 4), and the smaller holes of item 11: internals
// in error bodies, API key parsing, /metrics behind the key, JSON-only POSTs, slow bodies.
import { afterAll, afterEach, describe, expect, spyOn, test } from "bun:test";
import { parseApiKeys } from "../../src/gateway/middleware/auth.ts";
import { harness, MODEL, post, sseEvents } from "./helpers.ts";

const comp = { model: MODEL, prompt: "hi", max_tokens: 2 };
const INTERNAL = "kernel failed at /work/main/kernels/cpu/sample.c:76 (moe_sample)";

describe("sampling values that pass zod but mean nothing (item 4)", () => {
  test("a temperature under vLLM's 1e-5 is greedy; 1e-5 itself samples", async () => {
    const h = await harness();
    for (const temperature of [1e-50, 1e-300, 5e-6]) {
      expect((await post(h, "/v1/completions", { ...comp, temperature })).status).toBe(200);
      expect(h.engine.requests.at(-1)!.params.temperature).toBe(0);
    }
    expect((await post(h, "/v1/completions", { ...comp, temperature: 1e-5 })).status).toBe(200);
    expect(h.engine.requests.at(-1)!.params.temperature).toBe(1e-5);
  });

  test("a top_k beyond the vocabulary is no top_k; a vanishing repetition_penalty is a 400", async () => {
    const h = await harness();
    expect((await post(h, "/v1/completions", { ...comp, top_k: 1e12 })).status).toBe(200);
    expect(h.engine.requests.at(-1)!.params.top_k).toBe(0);
    expect((await post(h, "/v1/completions", { ...comp, top_k: 5 })).status).toBe(200);
    expect(h.engine.requests.at(-1)!.params.top_k).toBe(5);
    const res = await post(h, "/v1/completions", { ...comp, repetition_penalty: 1e-300 });
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).error.param).toBe("repetition_penalty");
  });
});

describe("error bodies carry no internals (item 11)", () => {
  let logged: unknown[][] = [];
  const spy = spyOn(console, "error").mockImplementation((...args: unknown[]) => void logged.push(args));
  afterEach(() => {
    logged = [];
  });
  afterAll(() => spy.mockRestore());

  const inLog = (needle: string) => logged.some((args) => args.some((a) => String(a instanceof Error ? a.message : a).includes(needle)));

  test("an unexpected error is a bare 500; its message goes to the log with the request id", async () => {
    const h = await harness({ refuse: new Error(INTERNAL) as never });
    const res = await post(h, "/v1/completions", comp, { "x-request-id": "req-leak-1" });
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(text).not.toContain("/work/main");
    expect(text).not.toContain("sample.c");
    expect(JSON.parse(text).error).toMatchObject({ type: "server_error", code: "internal" });
    expect(inLog("req-leak-1")).toBe(true);
    expect(inLog(INTERNAL)).toBe(true);
    expect(spy).toHaveBeenCalled();
  });

  test("an engine error in a sequence: whole or streamed, the client sees no file", async () => {
    const h = await harness({ failAfterTokens: 2, error: INTERNAL });
    const whole = await post(h, "/v1/completions", { ...comp, max_tokens: 10 }, { "x-request-id": "req-leak-2" });
    expect(whole.status).toBe(500);
    expect(await whole.text()).not.toContain("sample.c");
    const { events, done } = await sseEvents(await post(h, "/v1/completions", { ...comp, max_tokens: 10, stream: true }));
    expect(done).toBe(true);
    expect(events.at(-1).error.type).toBe("server_error");
    expect(JSON.stringify(events.at(-1))).not.toContain("sample.c");
    expect(inLog("req-leak-2")).toBe(true);
    expect(inLog(INTERNAL)).toBe(true);
  });
});

describe("API keys (item 11)", () => {
  test("keys are trimmed; a set but empty flag or MOE_API_KEY is an error, not auth off", async () => {
    expect(parseApiKeys("a, b", undefined)).toEqual(["a", "b"]);
    expect(parseApiKeys(undefined, " k1 ,k2 ")).toEqual(["k1", "k2"]);
    expect(parseApiKeys("flag", "env")).toEqual(["flag"]);
    expect(parseApiKeys(undefined, undefined)).toEqual([]);
    expect(() => parseApiKeys(undefined, "")).toThrow(/MOE_API_KEY/);
    expect(() => parseApiKeys(undefined, " , ")).toThrow(/MOE_API_KEY/);
    expect(() => parseApiKeys("", undefined)).toThrow(/--api-key/);
    const h = await harness({}, { apiKeys: parseApiKeys("a, b", undefined) });
    expect((await post(h, "/v1/completions", comp, { authorization: "Bearer b" })).status).toBe(200);
  });
});

describe("only JSON bodies are taken (item 11)", () => {
  test("text/plain, forms and a missing Content-Type are 415; application/json with a charset passes", async () => {
    const h = await harness();
    const body = JSON.stringify(comp);
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonp"]) {
      const res = await h.app.request("/v1/completions", { method: "POST", headers: { "content-type": type }, body });
      expect(res.status).toBe(415);
      expect(((await res.json()) as any).error.code).toBe("unsupported_media_type");
    }
    const bare = await h.app.request("/v1/chat/completions", { method: "POST", body: new Blob([body]).stream(), duplex: "half" } as RequestInit);
    expect(bare.status).toBe(415);
    expect(h.engine.requests).toHaveLength(0);
    for (const type of ["application/json; charset=utf-8", "Application/JSON"]) {
      const res = await h.app.request("/v1/completions", { method: "POST", headers: { "content-type": type }, body });
      expect(res.status).toBe(200);
    }
  });
});

describe("slow bodies and the request deadline (item 11)", () => {
  /** A body that sends its first bytes and then nothing, ever. */
  const stalled = () => new ReadableStream<Uint8Array>({ start(c) { c.enqueue(new TextEncoder().encode('{"model": "fake')); } });
  const send = (h: Awaited<ReturnType<typeof harness>>, headers: Record<string, string> = {}) => h.app.request("/v1/completions",
    { method: "POST", headers: { "content-type": "application/json", ...headers }, body: stalled(), duplex: "half" } as RequestInit);

  test("a body that never finishes is a 408 after the body timeout", async () => {
    const h = await harness({}, { bodyTimeoutMs: 50 });
    const res = await send(h);
    expect(res.status).toBe(408);
    expect(((await res.json()) as any).error).toMatchObject({ type: "timeout_error", code: "body_timeout" });
    expect(h.engine.requests).toHaveLength(0);
  }, 10_000);

  test("the request deadline covers reading the body", async () => {
    const h = await harness({}, { requestTimeoutMs: 50 });
    expect((await send(h)).status).toBe(408);
    expect((await send(h, { "content-length": "1000" })).status).toBe(408); // read by the handler, not bodyLimit
  }, 10_000);
});
