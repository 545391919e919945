// The official `openai` client, unchanged, against the app on a real socket.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { serveApp } from "../../src/gateway/server.ts";
import { harness, type Harness, MODEL, SCRIPT_TEXT, until } from "./helpers.ts";

let h: Harness;
let server: ReturnType<typeof serveApp>;
let client: OpenAI;
const messages = [{ role: "user" as const, content: "Tell me a fortune." }];

beforeAll(async () => {
  h = await harness({ stepMs: 1 }, { apiKeys: ["sk-test"] });
  server = serveApp(h.app, { port: 0 });
  client = new OpenAI({ baseURL: `http://127.0.0.1:${server.port}/v1`, apiKey: "sk-test", maxRetries: 0, timeout: 10_000 });
});

afterAll(() => server.stop(true));

describe("openai client over a socket", () => {
  test("models.list", async () => {
    const page = await client.models.list();
    expect(page.data.map((m) => m.id)).toEqual([MODEL]);
  });

  test("chat, not streaming: content, finish_reason, usage, logprobs", async () => {
    const r = await client.chat.completions.create({ model: MODEL, messages, temperature: 0, logprobs: true, top_logprobs: 2 });
    expect(r.choices[0]!.message.content).toBe(SCRIPT_TEXT);
    expect(r.choices[0]!.finish_reason).toBe("stop");
    expect(r.usage!.completion_tokens).toBe(h.script.length + 1);
    expect(r.choices[0]!.logprobs!.content!.length).toBe(h.script.length);
  });

  test("chat, streaming with usage and a stop string across tokens", async () => {
    const stream = await client.chat.completions.create({
      model: MODEL, messages, temperature: 0, stream: true, stream_options: { include_usage: true }, stop: ["quick brown"],
    });
    let text = "";
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe("Hello world! Caf\u00e9 \u{1F600} -- The ");
    expect(finish).toBe("stop");
    expect(usage!.prompt_tokens).toBeGreaterThan(0);
  });

  test("completions, streaming and not; n and seed", async () => {
    const r = await client.completions.create({ model: MODEL, prompt: "Once", temperature: 0, max_tokens: 5 });
    expect(r.choices[0]!.text).toBe(h.codec.decode(h.script.slice(0, 5)));
    expect(r.choices[0]!.finish_reason).toBe("length");
    expect(r.usage).toMatchObject({ completion_tokens: 5 });
    const stream = await client.completions.create({ model: MODEL, prompt: [[0, 5, 6]], temperature: 0, max_tokens: 5, stream: true });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? "";
    expect(text).toBe(r.choices[0]!.text);
    const a = await client.completions.create({ model: MODEL, prompt: "x", n: 2, seed: 9, temperature: 1, max_tokens: 8 });
    const b = await client.completions.create({ model: MODEL, prompt: "x", n: 2, seed: 9, temperature: 1, max_tokens: 8 });
    expect(a.choices.map((c) => c.text)).toEqual(b.choices.map((c) => c.text));
  });

  test("errors surface as the client's typed errors with the right status", async () => {
    const cases: [() => Promise<unknown>, number][] = [
      [() => client.chat.completions.create({ model: "gpt-9", messages }), 404],
      [() => client.chat.completions.create({ model: MODEL, messages, temperature: 7 }), 400],
      [() => client.completions.create({ model: MODEL, prompt: "x", suffix: "y" }), 400],
      [() => new OpenAI({ baseURL: client.baseURL, apiKey: "wrong", maxRetries: 0 }).models.list(), 401],
    ];
    for (const [call, status] of cases) {
      const err = await call().then(() => null, (e) => e);
      expect(err).toBeInstanceOf(OpenAI.APIError);
      expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(status);
    }
  });

  test("aborting a stream over the socket aborts the engine request", async () => {
    const before = h.engine.aborted.length;
    const stream = await client.chat.completions.create({ model: MODEL, messages, temperature: 0, stream: true, max_tokens: 200, ignore_eos: true } as OpenAI.ChatCompletionCreateParamsStreaming);
    let chunks = 0;
    for await (const _ of stream) if (++chunks === 3) break; // `break` aborts the HTTP request
    await until(() => h.engine.aborted.length === before + 1);
    await until(() => h.engine.stats().running === 0);
    const metrics = await (await fetch(`http://127.0.0.1:${server.port}/metrics`, { headers: { authorization: "Bearer sk-test" } })).text();
    expect(metrics).toMatch(/^moe_num_requests_running\{model_name="[^"]*"\} 0$/m);
    expect(metrics).toMatch(/^moe_kv_cache_blocks_used\{model_name="[^"]*"\} 0$/m);
  });

  test("a raw fetch dropped mid-stream aborts the engine request", async () => {
    const before = h.engine.aborted.length;
    const ctrl = new AbortController();
    const res = await fetch(`http://127.0.0.1:${server.port}/v1/completions`, {
      method: "POST", signal: ctrl.signal,
      headers: { "content-type": "application/json", authorization: "Bearer sk-test" },
      body: JSON.stringify({ model: MODEL, prompt: "x", max_tokens: 200, ignore_eos: true, stream: true }),
    });
    const reader = res.body!.getReader();
    await reader.read();
    ctrl.abort();
    await until(() => h.engine.aborted.length === before + 1);
    expect(h.engine.stats().running).toBe(0);
  });

  test("a client that hangs up on a non-streaming request aborts its engine request", async () => {
    const before = h.engine.aborted.length;
    const ctrl = new AbortController();
    const pending = fetch(`http://127.0.0.1:${server.port}/v1/completions`, {
      method: "POST", signal: ctrl.signal,
      headers: { "content-type": "application/json", authorization: "Bearer sk-test" },
      body: JSON.stringify({ model: MODEL, prompt: "x", max_tokens: 200, ignore_eos: true }),
    }).catch((e: Error) => e.name);
    await until(() => h.engine.stats().running === 1);
    ctrl.abort();
    expect(await pending).toBe("AbortError");
    await until(() => h.engine.aborted.length === before + 1);
    expect(h.engine.stats().running).toBe(0);
  });
});
