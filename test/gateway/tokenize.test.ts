// POST /tokenize and /detokenize as vLLM shapes them: {count, max_model_len, tokens} from a prompt
// or from chat messages (the same ids the completion endpoints would send the engine), {prompt}
// from token ids; OpenAI-shaped 4xx for what cannot be served, behind the API key like /v1.
import { describe, expect, test } from "bun:test";
import { harness, MODEL, post, SCRIPT_TEXT } from "./helpers.ts";

const messages = [{ role: "system", content: "Be brief." }, { role: "user", content: "Tell me a fortune." }];

describe("/tokenize", () => {
  test("a prompt: the tokenizer's ids, BOS unless add_special_tokens is false", async () => {
    const h = await harness();
    const res = await post(h, "/tokenize", { model: MODEL, prompt: SCRIPT_TEXT });
    expect(res.status).toBe(200);
    const body: any = await res.json();
    const want = h.codec.encode(SCRIPT_TEXT, { addSpecialTokens: true });
    expect(body).toEqual({ count: want.length, max_model_len: h.engine.info.max_model_len, tokens: want });
    const bare: any = await (await post(h, "/tokenize", { prompt: SCRIPT_TEXT, add_special_tokens: false })).json();
    expect(bare.tokens).toEqual(h.codec.encode(SCRIPT_TEXT, { addSpecialTokens: false }));
    expect(bare.count).toBe(want.length - 1);
  });

  test("messages: exactly the ids /v1/chat/completions gives the engine", async () => {
    const h = await harness();
    const body: any = await (await post(h, "/tokenize", { model: MODEL, messages })).json();
    await post(h, "/v1/chat/completions", { model: MODEL, messages, max_tokens: 2 });
    expect(body.tokens).toEqual(h.engine.requests.at(-1)!.prompt_ids);
    expect(body.count).toBe(body.tokens.length);
    const noGen: any = await (await post(h, "/tokenize", { messages, add_generation_prompt: false })).json();
    expect(noGen.count).toBeLessThan(body.count);
    expect(body.tokens.slice(0, noGen.count)).toEqual(noGen.tokens);
  });

  test("return_token_strs spells each token", async () => {
    const h = await harness();
    const body: any = await (await post(h, "/tokenize", { prompt: "Hello world", add_special_tokens: false, return_token_strs: true })).json();
    expect(body.token_strs).toHaveLength(body.count);
    expect(body.token_strs.join("")).toBe("Hello world");
  });

  test("bad requests: OpenAI-shaped 400/404/415, a prompt past the context is refused", async () => {
    const h = await harness({ info: { max_model_len: 16 } });
    const bad = async (res: Response, status: number, param?: string) => {
      expect(res.status).toBe(status);
      const { error }: any = await res.json();
      if (param) expect(error.param).toBe(param);
      return error;
    };
    await bad(await post(h, "/tokenize", {}), 400, "prompt");
    await bad(await post(h, "/tokenize", { prompt: 5 }), 400, "prompt");
    await bad(await post(h, "/tokenize", { messages: [] }), 400, "messages");
    await bad(await post(h, "/tokenize", { model: "other", prompt: "x" }), 404, "model");
    const long = await bad(await post(h, "/tokenize", { prompt: "word ".repeat(100) }), 400, "prompt");
    expect(long.code).toBe("context_length_exceeded");
    expect((await post(h, "/tokenize", "prompt=x", { "content-type": "text/plain" })).status).toBe(415);
  });
});

describe("/detokenize", () => {
  test("token ids back to text, special tokens kept; round trip with /tokenize", async () => {
    const h = await harness();
    const ids: any = await (await post(h, "/tokenize", { prompt: SCRIPT_TEXT, add_special_tokens: false })).json();
    const res = await post(h, "/detokenize", { model: MODEL, tokens: ids.tokens });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ prompt: SCRIPT_TEXT });
    const withBos: any = await (await post(h, "/detokenize", { tokens: [h.engine.info.bos_token_id, ...ids.tokens] })).json();
    expect(withBos.prompt).toBe(h.codec.decode([h.engine.info.bos_token_id], { skipSpecialTokens: false }) + SCRIPT_TEXT);
  });

  test("ids outside the vocabulary or not ids at all are a 400 naming tokens", async () => {
    const h = await harness();
    for (const tokens of [[1, 99999], [-1], ["a"], "1,2"]) {
      const res = await post(h, "/detokenize", { tokens });
      expect(res.status).toBe(400);
      expect(((await res.json()) as any).error.param).toStartWith("tokens");
    }
  });
});

test("behind the API key when one is set", async () => {
  const h = await harness({}, { apiKeys: ["sk-test"] });
  expect((await post(h, "/tokenize", { prompt: "x" })).status).toBe(401);
  expect((await post(h, "/detokenize", { tokens: [5] })).status).toBe(401);
  expect((await post(h, "/tokenize", { prompt: "x" }, { authorization: "Bearer sk-test" })).status).toBe(200);
});
