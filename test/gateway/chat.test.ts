// /v1/chat/completions, /v1/models, /health, /metrics through app.request().
import { describe, expect, test } from "bun:test";
import { harness, MODEL, post, SCRIPT_TEXT, sseEvents } from "./helpers.ts";

const greedy = { model: MODEL, temperature: 0 };
const messages = [{ role: "system", content: "Be brief." }, { role: "user", content: "Tell me a fortune." }];

describe("POST /v1/chat/completions", () => {
  test("messages go through the chat template; the answer is a chat.completion with usage", async () => {
    const h = await harness();
    const res = await post(h, "/v1/chat/completions", { ...greedy, messages });
    expect(res.status).toBe(200);
    const body: any = await res.json();
    const expected = h.codec.encode(h.codec.applyChatTemplate(messages, { addGenerationPrompt: true }), { addSpecialTokens: false });
    expect(h.engine.requests[0]!.prompt_ids).toEqual(expected);
    expect(expected.filter((id) => id === 0)).toHaveLength(1); // one BOS, from the template
    expect(body.object).toBe("chat.completion");
    expect(body.id).toStartWith("chatcmpl-");
    expect(body.choices).toEqual([{ index: 0, message: { role: "assistant", content: SCRIPT_TEXT }, logprobs: null, finish_reason: "stop" }]);
    expect(body.usage.prompt_tokens).toBe(expected.length);
    expect(body.usage.completion_tokens).toBe(h.script.length + 1);
  });

  test("content parts and developer messages are accepted", async () => {
    const h = await harness();
    const res = await post(h, "/v1/chat/completions", {
      ...greedy, max_tokens: 1,
      messages: [{ role: "developer", content: "sys" }, { role: "user", content: [{ type: "text", text: "a" }, { type: "text", text: "b" }] }],
    });
    expect(res.status).toBe(200);
    const expected = h.codec.applyChatTemplate([{ role: "system", content: "sys" }, { role: "user", content: "a\nb" }], { addGenerationPrompt: true });
    expect(h.engine.requests[0]!.prompt_ids).toEqual(h.codec.encode(expected, { addSpecialTokens: false }));
  });

  test("max_completion_tokens wins over max_tokens", async () => {
    const h = await harness();
    const body: any = await (await post(h, "/v1/chat/completions", { ...greedy, messages, max_tokens: 9, max_completion_tokens: 2 })).json();
    expect(body.choices[0].finish_reason).toBe("length");
    expect(body.usage.completion_tokens).toBe(2);
  });

  test("streaming: role first, then content, then finish_reason, usage chunk, [DONE]", async () => {
    const h = await harness();
    const res = await post(h, "/v1/chat/completions", { ...greedy, messages, stream: true, stream_options: { include_usage: true } });
    const { events, done } = await sseEvents(res);
    expect(done).toBe(true);
    expect(events[0].object).toBe("chat.completion.chunk");
    expect(events[0].choices[0].delta).toEqual({ role: "assistant", content: "" });
    const content = events.slice(1, -2).map((e) => e.choices[0].delta.content);
    expect(content.join("")).toBe(SCRIPT_TEXT);
    for (const c of content) expect(c).not.toContain("\uFFFD");
    expect(events.at(-2).choices[0]).toEqual({ index: 0, delta: {}, logprobs: null, finish_reason: "stop" });
    expect(events.at(-1).choices).toEqual([]);
    expect(events.at(-1).usage.completion_tokens).toBe(h.script.length + 1);
    expect(new Set(events.map((e) => e.id)).size).toBe(1);
  });

  test("streaming with a stop string across tokens", async () => {
    const h = await harness();
    const { events } = await sseEvents(await post(h, "/v1/chat/completions", { ...greedy, messages, stream: true, stop: ["\u00e9 \u{1F600}"] }));
    const text = events.map((e) => e.choices[0]?.delta?.content ?? "").join("");
    expect(text).toBe("Hello world! Caf");
    expect(events.at(-1).choices[0].finish_reason).toBe("stop");
  });

  test("logprobs with top_logprobs", async () => {
    const h = await harness();
    const body: any = await (await post(h, "/v1/chat/completions", { ...greedy, messages, max_tokens: 2, logprobs: true, top_logprobs: 3 })).json();
    expect(h.engine.requests[0]!.params.logprobs).toBe(3);
    const content = body.choices[0].logprobs.content;
    expect(content.map((c: any) => c.token)).toEqual(["H", "ell"]);
    expect(content[0].logprob).toBe(-0.25);
    expect(content[0].bytes).toEqual([72]);
    expect(content[0].top_logprobs).toHaveLength(3);
    expect(content[0].top_logprobs[0]).toEqual({ token: "H", logprob: -0.25, bytes: [72] });
  });

  test("logprobs in a stream travel with the text they produced", async () => {
    const h = await harness();
    const { events } = await sseEvents(await post(h, "/v1/chat/completions", { ...greedy, messages, stream: true, logprobs: true }));
    const tokens = events.flatMap((e) => e.choices[0]?.logprobs?.content ?? []).map((c: any) => c.token);
    expect(tokens).toHaveLength(h.script.length); // every script token once, EOS excluded
    expect(h.engine.requests[0]!.params.logprobs).toBe(0);
  });

  test("n > 1 streams several choices, each with its role chunk and finish", async () => {
    const h = await harness();
    const { events } = await sseEvents(await post(h, "/v1/chat/completions", { ...greedy, messages, n: 3, stream: true, max_tokens: 4 }));
    for (const i of [0, 1, 2]) {
      const mine = events.filter((e) => e.choices[0].index === i);
      expect(mine[0].choices[0].delta.role).toBe("assistant");
      expect(mine.at(-1).choices[0].finish_reason).toBe("length");
      expect(mine.map((e) => e.choices[0].delta.content ?? "").join("")).toBe("Hello world");
    }
  });

  test("same seed, same output", async () => {
    const h = await harness();
    const req = { model: MODEL, messages, temperature: 0.8, seed: 42, max_tokens: 10 };
    const a: any = await (await post(h, "/v1/chat/completions", req)).json();
    const b: any = await (await post(h, "/v1/chat/completions", req)).json();
    const c: any = await (await post(h, "/v1/chat/completions", { ...req, seed: 43 })).json();
    expect(a.choices[0].message.content).toBe(b.choices[0].message.content);
    expect(a.choices[0].message.content).not.toBe(c.choices[0].message.content);
  });

  test("model may be omitted; x-request-id is echoed and used in the id", async () => {
    const h = await harness();
    const res = await post(h, "/v1/chat/completions", { messages, max_tokens: 1 }, { "x-request-id": "abc-123" });
    expect(res.headers.get("x-request-id")).toBe("abc-123");
    expect(((await res.json()) as any).id).toBe("chatcmpl-abc-123");
    expect(h.engine.requests[0]!.id).toStartWith("abc-123-");
    await post(h, "/v1/chat/completions", { messages, max_tokens: 1 }, { "x-request-id": "abc-123" });
    expect(h.engine.requests[1]!.id).not.toBe(h.engine.requests[0]!.id); // a repeated client id stays unique inside
  });
});

describe("GET routes", () => {
  test("/v1/models lists the served model", async () => {
    const h = await harness({}, { servedModelName: "fortune" });
    const body: any = await (await h.app.request("/v1/models")).json();
    expect(body.object).toBe("list");
    expect(body.data).toHaveLength(1);
    expect(body.data[0]).toMatchObject({ id: "fortune", object: "model", owned_by: "moe-actors", max_model_len: 256 });
    expect((await h.app.request("/v1/models/fortune")).status).toBe(200);
    expect((await h.app.request("/v1/models/other")).status).toBe(404);
  });

  test("/health", async () => {
    const h = await harness();
    const res = await h.app.request("/health");
    expect(res.status).toBe(200);
  });

  test("/metrics exposes requests, tokens, latencies, engine gauges and expert load", async () => {
    const h = await harness();
    await post(h, "/v1/completions", { ...greedy, prompt: [3, 4, 5], max_tokens: 4 });
    await post(h, "/v1/completions", { model: "nope", prompt: "x" });
    const res = await h.app.request("/metrics");
    expect(res.headers.get("content-type")).toStartWith("text/plain; version=0.0.4");
    const text = await res.text();
    const m = 'model_name="fake-dsv3"';
    expect(text).toContain(`moe_requests_total{${m},route="/v1/completions",status="200"} 1`);
    expect(text).toContain(`moe_requests_total{${m},route="/v1/completions",status="404"} 1`);
    expect(text).toContain(`moe_prompt_tokens_total{${m}} 3`);
    expect(text).toContain(`moe_generation_tokens_total{${m}} 4`);
    expect(text).toContain(`moe_time_to_first_token_seconds_count{${m}} 1`);
    expect(text).toContain(`moe_time_per_output_token_seconds_count{${m}} 1`);
    expect(text).toContain(`moe_e2e_request_latency_seconds_count{${m}} 1`);
    expect(text).toContain(`moe_num_requests_running{${m}} 0`);
    expect(text).toContain(`moe_num_requests_waiting{${m}} 0`);
    expect(text).toContain(`moe_kv_cache_blocks_used{${m}} 0`);
    expect(text).toContain(`moe_kv_cache_blocks_total{${m}} 64`);
    expect(text).toContain(`moe_kv_cache_usage_perc{${m}} 0`);
    expect(text).toMatch(/moe_expert_tokens_total\{model_name="fake-dsv3",layer="1",expert="0"\} \d+/);
    expect(text).toContain(`moe_spec_decode_num_accepted_tokens_total{${m}} 3`);
    expect(text).toContain(`moe_request_success_total{${m},finished_reason="length"} 1`);
  });
});
