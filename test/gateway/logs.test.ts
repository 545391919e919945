// Issue 18, logs: one line per request (a stream's when it ends) with fixed field names, as JSON lines
// or text; read back after a 200, a stream, 4xx, a 429 and aborts. In-process (app.request()) with the
// FakeEngine; test/gateway/serve-logs.test.ts reads a spawned `moe serve --log-format json`.
import { describe, expect, test } from "bun:test";
import { EngineError } from "../../src/engine/types.ts";
import { Logger, type LogFormat } from "../../src/log.ts";
import { harness, MODEL, post, sseEvents, until } from "./helpers.ts";

function sink(format: LogFormat = "json", level: "debug" | "info" = "info") {
  const lines: string[] = [];
  return { lines, log: new Logger({ format, level, write: (l) => lines.push(l) }) };
}

/** The request lines (parsed) with this request id. */
function requestLines(lines: string[], id: string): any[] {
  return lines.map((l) => JSON.parse(l)).filter((o) => o.event === "request" && o.request_id === id);
}

const REQUEST_FIELDS = ["ts", "level", "msg", "event", "request_id", "method", "path", "status", "prompt_tokens",
  "completion_tokens", "ttft_ms", "total_ms", "finish_reason"];

const comp = { model: MODEL, prompt: "Hello there", max_tokens: 5, ignore_eos: true, temperature: 0 };

describe("JSON access log lines", () => {
  test("a 200: method, path, status, request id, tokens in and out, TTFT and total time", async () => {
    const { lines, log } = sink();
    const h = await harness({ stepMs: 1 }, { log });
    const res = await post(h, "/v1/completions", comp, { "x-request-id": "log-200" });
    expect(res.status).toBe(200);
    const usage = ((await res.json()) as any).usage;
    const [line, ...more] = requestLines(lines, "log-200");
    expect(more).toHaveLength(0);
    for (const f of REQUEST_FIELDS) expect(line).toHaveProperty(f);
    expect(new Date(line.ts).toISOString()).toBe(line.ts);
    expect(line).toMatchObject({ level: "info", msg: "request", method: "POST", path: "/v1/completions", status: 200,
      prompt_tokens: usage.prompt_tokens, completion_tokens: 5, finish_reason: "length" });
    expect(usage.completion_tokens).toBe(5);
    expect(line.ttft_ms).toBeGreaterThanOrEqual(0);
    expect(line.total_ms).toBeGreaterThanOrEqual(line.ttft_ms);
    for (const l of lines) expect(() => JSON.parse(l)).not.toThrow(); // every line one JSON object
    expect(lines.every((l) => l.endsWith("\n") && l.indexOf("\n") === l.length - 1)).toBe(true);
  });

  test("n choices: the prompt counted once (as in usage), every choice's tokens", async () => {
    const { lines, log } = sink();
    const h = await harness({ stepMs: 1 }, { log });
    const res = await post(h, "/v1/completions", { ...comp, n: 3, max_tokens: 4 }, { "x-request-id": "log-n3" });
    const usage = ((await res.json()) as any).usage;
    const [line] = requestLines(lines, "log-n3");
    expect(line.prompt_tokens).toBe(usage.prompt_tokens);
    expect(line.completion_tokens).toBe(12);
    expect(usage.completion_tokens).toBe(12);
  });

  test("a stream is logged when it ends, not when its headers go out", async () => {
    const { lines, log } = sink();
    const h = await harness({ stepMs: 1 }, { log });
    const res = await post(h, "/v1/chat/completions", {
      model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 6, ignore_eos: true, temperature: 0, stream: true,
    }, { "x-request-id": "log-stream" });
    expect(res.status).toBe(200);
    expect(requestLines(lines, "log-stream")).toHaveLength(0); // headers are out, the body is not
    const { done } = await sseEvents(res);
    expect(done).toBe(true);
    await until(() => requestLines(lines, "log-stream").length === 1);
    const [line] = requestLines(lines, "log-stream");
    expect(line).toMatchObject({ path: "/v1/chat/completions", status: 200, completion_tokens: 6, finish_reason: "length", stream: true });
    expect(line.prompt_tokens).toBeGreaterThan(0);
    expect(line.ttft_ms).toBeGreaterThanOrEqual(0);
  });

  test("4xx: the status and the client's error message; no tokens", async () => {
    const { lines, log } = sink();
    const h = await harness({}, { log });
    expect((await post(h, "/v1/completions", { ...comp, max_tokens: -1 }, { "x-request-id": "log-400" })).status).toBe(400);
    expect((await post(h, "/v1/completions", { ...comp, model: "nope" }, { "x-request-id": "log-404" })).status).toBe(404);
    const [bad] = requestLines(lines, "log-400");
    expect(bad).toMatchObject({ level: "info", status: 400, prompt_tokens: null, completion_tokens: null, ttft_ms: null });
    expect(bad.error).toContain("max_tokens");
    const [missing] = requestLines(lines, "log-404");
    expect(missing).toMatchObject({ status: 404, path: "/v1/completions" });
    expect(missing.error).toContain("nope");
  });

  test("429: a warning with the refusal", async () => {
    const { lines, log } = sink();
    const h = await harness({ refuse: new EngineError("too many requests are waiting", "queue_full", 1) }, { log });
    const res = await post(h, "/v1/completions", comp, { "x-request-id": "log-429" });
    expect(res.status).toBe(429);
    const [line] = requestLines(lines, "log-429");
    expect(line).toMatchObject({ level: "warn", status: 429, method: "POST" });
    expect(typeof line.error).toBe("string");
  });

  test("5xx: a 500 is an error line, with the details (never sent to the client) in a request_error line; a 503 a warning", async () => {
    const { lines, log } = sink();
    const h = await harness({ refuse: new Error("kernel failed at kernels/cpu/sample.c:76") as never }, { log });
    const res = await post(h, "/v1/completions", comp, { "x-request-id": "log-500" });
    expect(res.status).toBe(500);
    expect(await res.text()).not.toContain("sample.c");
    const all = lines.map((l) => JSON.parse(l)).filter((o) => o.request_id === "log-500");
    expect(all.map((o) => o.event)).toEqual(["request_error", "request"]);
    expect(all[0]).toMatchObject({ level: "error", status: 500 });
    expect(all[0].error).toContain("sample.c:76");
    expect(all[1]).toMatchObject({ level: "error", status: 500 });
    expect(all[1].error).not.toContain("sample.c");
    const busy = await harness({ refuse: new EngineError("no live host", "unavailable") }, { log });
    expect((await post(busy, "/v1/completions", comp, { "x-request-id": "log-503" })).status).toBe(503);
    expect(requestLines(lines, "log-503")[0]).toMatchObject({ level: "warn", status: 503 });
  });

  test("aborts: a client gone before the answer (499), and a stream cut off mid-way (finish_reason abort)", async () => {
    const { lines, log } = sink();
    const h = await harness({ stepMs: 5 }, { log });
    const ctrl = new AbortController();
    const pending = post(h, "/v1/completions", { ...comp, max_tokens: 200 }, { "x-request-id": "log-gone" }, { signal: ctrl.signal });
    await until(() => h.engine.stats().running === 1);
    ctrl.abort();
    expect((await pending).status).toBe(499);
    const [gone] = requestLines(lines, "log-gone");
    expect(gone).toMatchObject({ status: 499, error: "Client closed the request.", completion_tokens: null });

    const res = await post(h, "/v1/completions", { ...comp, max_tokens: 200, stream: true }, { "x-request-id": "log-cut" });
    const reader = res.body!.getReader();
    for (let i = 0; i < 3; i++) await reader.read();
    expect(requestLines(lines, "log-cut")).toHaveLength(0);
    await reader.cancel();
    await until(() => requestLines(lines, "log-cut").length === 1);
    const [cut] = requestLines(lines, "log-cut");
    expect(cut).toMatchObject({ status: 200, finish_reason: "abort", stream: true });
    expect(cut.completion_tokens).toBeGreaterThanOrEqual(1);
    expect(cut.completion_tokens).toBeLessThan(200);
  });

  test("probes and scrapes are debug lines: hidden at info, shown at debug", async () => {
    const quiet = sink("json", "info");
    const h = await harness({}, { log: quiet.log });
    await h.app.request("/health");
    await h.app.request("/metrics");
    await h.app.request("/v1/models", { headers: { "x-request-id": "log-models" } });
    expect(quiet.lines.map((l) => JSON.parse(l).path)).toEqual(["/v1/models"]);
    const loud = sink("json", "debug");
    const h2 = await harness({}, { log: loud.log });
    await h2.app.request("/health");
    expect(JSON.parse(loud.lines[0]!)).toMatchObject({ level: "debug", path: "/health", status: 200 });
  });
});

describe("text access log lines", () => {
  test("ts LEVEL msg key=value, the same fields", async () => {
    const { lines, log } = sink("text");
    const h = await harness({ stepMs: 1 }, { log });
    await post(h, "/v1/completions", comp, { "x-request-id": "log-text" });
    await post(h, "/v1/completions", { ...comp, max_tokens: -1 }, { "x-request-id": "log-text-400" });
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z INFO  request method=POST path=\/v1\/completions status=200 request_id=log-text prompt_tokens=\d+ completion_tokens=5 ttft_ms=[\d.]+ total_ms=[\d.]+ finish_reason=length\n$/);
    expect(lines[1]).toMatch(/ status=400 request_id=log-text-400 total_ms=[\d.]+ error="[^"]*max_tokens[^"]*"\n$/);
  });
});
