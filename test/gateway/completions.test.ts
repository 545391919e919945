// /v1/completions through app.request(): text and token prompts, streaming, usage, stop strings
// across token boundaries, echo, logprobs, n, seeds.
import { describe, expect, test } from "bun:test";
import { harness, MODEL, post, SCRIPT_TEXT, sseEvents } from "./helpers.ts";

const greedy = { model: MODEL, temperature: 0 };

describe("POST /v1/completions", () => {
  test("greedy completion of a text prompt: the whole script, EOS hidden, usage counted", async () => {
    const h = await harness();
    const res = await post(h, "/v1/completions", { ...greedy, prompt: "Say hi" });
    expect(res.status).toBe(200);
    const body: any = await res.json();
    expect(body.object).toBe("text_completion");
    expect(body.id).toStartWith("cmpl-");
    expect(body.model).toBe(MODEL);
    expect(body.choices).toEqual([{ index: 0, text: SCRIPT_TEXT, logprobs: null, finish_reason: "stop" }]);
    const promptIds = h.codec.encode("Say hi");
    expect(h.engine.requests[0]!.prompt_ids).toEqual(promptIds); // BOS added for text prompts
    expect(body.usage).toEqual({ prompt_tokens: promptIds.length, completion_tokens: h.script.length + 1,
      total_tokens: promptIds.length + h.script.length + 1 });
  });

  test("token-id prompts go to the engine unchanged; max_tokens ends with length", async () => {
    const h = await harness();
    const res = await post(h, "/v1/completions", { ...greedy, prompt: [0, 42, 423], max_tokens: 3 });
    const body: any = await res.json();
    expect(h.engine.requests[0]!.prompt_ids).toEqual([0, 42, 423]);
    expect(h.engine.requests[0]!.params.max_tokens).toBe(3);
    expect(body.choices[0].finish_reason).toBe("length");
    expect(body.choices[0].text).toBe(h.codec.decode(h.script.slice(0, 3)));
    expect(body.usage.completion_tokens).toBe(3);
  });

  test("sampling parameters reach the engine", async () => {
    const h = await harness();
    await post(h, "/v1/completions", {
      model: MODEL, prompt: "x", temperature: 0.7, top_p: 0.9, top_k: 20, min_p: 0.05, presence_penalty: 0.5,
      frequency_penalty: -0.5, repetition_penalty: 1.1, seed: 7, stop_token_ids: [16], ignore_eos: true, max_tokens: 5,
      user: "someone", metadata: { a: 1 },
    });
    expect(h.engine.requests[0]!.params).toEqual({
      temperature: 0.7, top_p: 0.9, top_k: 20, min_p: 0.05, presence_penalty: 0.5, frequency_penalty: -0.5,
      repetition_penalty: 1.1, seed: 7, max_tokens: 5, stop_token_ids: [16], ignore_eos: true, logprobs: null,
      prompt_logprobs: false,
    });
  });

  test("a stop string spanning several tokens cuts the text before it", async () => {
    const h = await harness();
    const body: any = await (await post(h, "/v1/completions", { ...greedy, prompt: "x", stop: ["llo wor", "zzz"] })).json();
    expect(body.choices[0].text).toBe("He");
    expect(body.choices[0].finish_reason).toBe("stop");
    expect(h.engine.aborted).toHaveLength(1); // the engine sequence was cancelled at the stop string
  });

  test("streaming: text_completion chunks add up to the text, stop string never leaks, [DONE] last", async () => {
    const h = await harness();
    const res = await post(h, "/v1/completions", { ...greedy, prompt: "x", stream: true, stop: " brown" });
    expect(res.headers.get("content-type")).toStartWith("text/event-stream");
    const { events, done } = await sseEvents(res);
    expect(done).toBe(true);
    for (const e of events) expect(e.object).toBe("text_completion");
    const text = events.map((e) => e.choices[0].text).join("");
    expect(text).toBe("Hello world! Caf\u00e9 \u{1F600} -- The quick");
    for (const e of events) expect(e.choices[0].text).not.toContain("\uFFFD");
    expect(events.at(-1).choices[0].finish_reason).toBe("stop");
    expect(events.slice(0, -1).every((e) => e.choices[0].finish_reason === null)).toBe(true);
  });

  test("streaming holds back a possible stop prefix and releases it when it is not one", async () => {
    const h = await harness();
    const { events } = await sseEvents(await post(h, "/v1/completions", { ...greedy, prompt: "x", stream: true, stop: "fox!" }));
    const texts = events.map((e) => e.choices[0].text);
    expect(texts.join("")).toBe(SCRIPT_TEXT);
    expect(texts.some((t) => t.endsWith("f"))).toBe(false); // "f" (start of "fox!") was held, not sent alone
  });

  test("stream_options.include_usage adds a final usage chunk with empty choices", async () => {
    const h = await harness();
    const { events } = await sseEvents(await post(h, "/v1/completions",
      { ...greedy, prompt: [5, 6], max_tokens: 4, stream: true, stream_options: { include_usage: true } }));
    const last = events.at(-1);
    expect(last.choices).toEqual([]);
    expect(last.usage).toEqual({ prompt_tokens: 2, completion_tokens: 4, total_tokens: 6 });
    expect(events.slice(0, -1).every((e) => e.usage === null)).toBe(true);
  });

  test("several prompts and n choices: indexes are prompt * n + i", async () => {
    const h = await harness();
    const body: any = await (await post(h, "/v1/completions", { ...greedy, prompt: ["a", "b"], n: 2, max_tokens: 2 })).json();
    expect(body.choices.map((c: any) => c.index)).toEqual([0, 1, 2, 3]);
    expect(h.engine.requests).toHaveLength(4);
    expect(body.usage.prompt_tokens).toBe(h.codec.encode("a").length + h.codec.encode("b").length);
    expect(body.usage.completion_tokens).toBe(8);
  });

  test("logprobs: tokens, token_logprobs, top_logprobs, text_offset", async () => {
    const h = await harness();
    const body: any = await (await post(h, "/v1/completions", { ...greedy, prompt: "x", max_tokens: 3, logprobs: 2 })).json();
    const lp = body.choices[0].logprobs;
    expect(h.engine.requests[0]!.params.logprobs).toBe(2);
    expect(lp.tokens).toEqual(["H", "ell", "o"]);
    expect(lp.token_logprobs).toEqual([-0.25, -0.5, -0.75]);
    expect(Object.keys(lp.top_logprobs[0])).toHaveLength(2);
    expect(lp.top_logprobs[0].H).toBe(-0.25);
    expect(lp.text_offset).toEqual([0, 1, 4]);
  });

  test("return_tokens_as_token_ids spells logprob tokens as token_id:N", async () => {
    const h = await harness();
    const body: any = await (await post(h, "/v1/completions", { ...greedy, prompt: "x", max_tokens: 2, logprobs: 1, return_tokens_as_token_ids: true })).json();
    expect(body.choices[0].logprobs.tokens).toEqual(h.script.slice(0, 2).map((id) => `token_id:${id}`));
  });

  test("echo puts the prompt in front; with logprobs it asks for prompt logprobs", async () => {
    const h = await harness();
    const body: any = await (await post(h, "/v1/completions", { ...greedy, prompt: "Hi there", max_tokens: 2, echo: true, logprobs: 0 })).json();
    expect(h.engine.requests[0]!.params.prompt_logprobs).toBe(true);
    const c = body.choices[0];
    expect(c.text).toBe("Hi there" + "Hell");
    const n = h.codec.encode("Hi there").length;
    expect(c.logprobs.tokens).toHaveLength(n + 2);
    expect(c.logprobs.token_logprobs[0]).toBeNull();
    expect(c.logprobs.token_logprobs.slice(1, n).every((x: number) => x < 0)).toBe(true);
  });

  test("echo while streaming sends the prompt first", async () => {
    const h = await harness();
    const { events } = await sseEvents(await post(h, "/v1/completions", { ...greedy, prompt: "Hi", max_tokens: 1, echo: true, stream: true }));
    expect(events[0].choices[0].text).toBe("Hi");
    expect(events.map((e) => e.choices[0].text).join("")).toBe("HiH");
  });

  test("same seed, same output; choices of one seeded request differ but are reproducible", async () => {
    const h = await harness();
    const req = { model: MODEL, prompt: "x", temperature: 1, seed: 1234, max_tokens: 12, n: 2 };
    const a: any = await (await post(h, "/v1/completions", req)).json();
    const b: any = await (await post(h, "/v1/completions", req)).json();
    expect(a.choices.map((c: any) => c.text)).toEqual(b.choices.map((c: any) => c.text));
    expect(a.choices[0].text).not.toBe(a.choices[1].text);
    expect(h.engine.requests.map((r) => r.params.seed)).toEqual([1234, 1235, 1234, 1235]);
  });

  test("ignore_eos runs to max_tokens", async () => {
    const h = await harness();
    const body: any = await (await post(h, "/v1/completions", { ...greedy, prompt: "x", ignore_eos: true, max_tokens: 30 })).json();
    expect(body.choices[0].finish_reason).toBe("length");
    expect(body.usage.completion_tokens).toBe(30);
  });

  test("stop_token_ids end the sequence and the stop token is not shown", async () => {
    const h = await harness();
    const body: any = await (await post(h, "/v1/completions", { ...greedy, prompt: "x", stop_token_ids: [1173] })).json();
    expect(body.choices[0].text).toBe("Hello");
    expect(body.choices[0].finish_reason).toBe("stop");
  });
});
