// tool_choice "required" and a named function (issue 15): decoding is held to one valid call whose
// arguments validate against the function's schema, whatever the model. Here the "model" picks
// uniformly among the tokens the constraint allows (the worst a model can do) over DeepSeek-V3's real
// vocabulary; the answers go through the official client and are checked with ajv.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import Ajv from "ajv";
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { seededRandom } from "../../src/engine/sequence.ts";
import type { Engine, EngineStats, GenerateRequest, ModelInfo, TokenEvent } from "../../src/engine/types.ts";
import { allowed } from "../../src/grammar/index.ts";
import { serveApp } from "../../src/gateway/server.ts";
import { loadTokenizer } from "../../src/tokenizer/index.ts";
import { DSV3_TOKENIZER_DIR } from "../tokenizer/dsv3-fixture.ts";
import { appAround, MODEL } from "./helpers.ts";

/** An engine whose every token is drawn at random from those the request's constraint allows (and,
 * without one, from a few ordinary tokens). */
class RandomEngine implements Engine {
  readonly requests: GenerateRequest[] = [];
  constructor(readonly info: ModelInfo) {}
  async *generate(req: GenerateRequest): AsyncGenerator<TokenEvent> {
    this.requests.push(req);
    const p = req.params;
    const rnd = seededRandom(p.seed ?? 1);
    const matcher = p.constraint?.start();
    const mask = new Uint32Array(Math.ceil(this.info.vocab_size / 32));
    for (let n = 1; n <= p.max_tokens; n++) {
      let id = 100 + Math.floor(rnd() * 1000);
      if (matcher) {
        matcher.fill(mask, p.max_tokens - n + 1);
        const ok: number[] = [];
        for (let w = 0; w < mask.length; w++) if (mask[w]) for (let b = 0; b < 32; b++) if (allowed(mask, w * 32 + b)) ok.push(w * 32 + b);
        id = ok[Math.floor(rnd() * ok.length)]!;
        if (!matcher.accept(id)) throw new Error(`the constraint refused the token it allowed: ${id}`);
      }
      await Bun.sleep(0);
      yield { type: "token", id };
      const end = id === this.info.eos_token_id || matcher?.done();
      if (end || n === p.max_tokens) {
        yield { type: "done", finish_reason: end ? "stop" : "length", prompt_tokens: req.prompt_ids.length, completion_tokens: n };
        return;
      }
    }
  }
  stats(): EngineStats {
    return { running: 0, waiting: 0, kv_blocks_used: 0, kv_blocks_total: 1, prompt_tokens_total: 0, generation_tokens_total: 0, expert_load: {} };
  }
  health() {
    return { ready: true };
  }
  async close(): Promise<void> {}
}

const weather = {
  type: "object",
  properties: {
    city: { type: "string", minLength: 1, maxLength: 12 },
    unit: { enum: ["C", "F"] },
    days: { type: "integer", minimum: 1, maximum: 7 },
  },
  required: ["city", "days"],
  additionalProperties: false,
};
const time = { type: "object", properties: { tz: { type: "string", maxLength: 6 } }, required: ["tz"], additionalProperties: false };
const tools: OpenAI.ChatCompletionTool[] = [
  { type: "function", function: { name: "get_weather", description: "Forecast for a city.", parameters: weather } },
  { type: "function", function: { name: "get_time", parameters: time } },
];
const schemaOf: Record<string, object> = { get_weather: weather, get_time: time };
const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: "user", content: "Plan my trip to Paris." }];
const ajv = new Ajv({ strict: false });
const SEEDS = [1, 2, 3, 4, 5, 6];

describe("tool_choice required / named over /v1/chat/completions (random model, DeepSeek-V3 vocabulary)", () => {
  let engine: RandomEngine;
  let server: ReturnType<typeof serveApp>;
  let client: OpenAI;

  beforeAll(async () => {
    const tok = await loadTokenizer(DSV3_TOKENIZER_DIR);
    engine = new RandomEngine({ id: MODEL, max_model_len: 4096, vocab_size: 129280, eos_token_id: tok.eosId, bos_token_id: tok.bosId });
    server = serveApp(appAround(engine, tok), { port: 0 });
    client = new OpenAI({ baseURL: `http://127.0.0.1:${server.port}/v1`, apiKey: "none", maxRetries: 0, timeout: 60_000 });
  }, 60_000);
  afterAll(() => server.stop(true));

  function expectValidCall(r: OpenAI.ChatCompletion, names: string[]): OpenAI.ChatCompletionMessageFunctionToolCall {
    const choice = r.choices[0]!;
    expect(choice.finish_reason).toBe("tool_calls");
    expect(choice.message.tool_calls).toHaveLength(1);
    const call = choice.message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
    expect(names).toContain(call.function.name);
    const args = JSON.parse(call.function.arguments);
    const validate = ajv.compile(schemaOf[call.function.name]!);
    if (!validate(args)) throw new Error(`${call.function.arguments}: ${ajv.errorsText(validate.errors)}`);
    return call;
  }

  test("named: every seed, streamed or not, calls that function with arguments that validate", async () => {
    for (const seed of SEEDS) {
      const r = await client.chat.completions.create({
        model: MODEL, messages, tools, tool_choice: { type: "function", function: { name: "get_weather" } }, temperature: 1, seed, max_tokens: 80,
      });
      expectValidCall(r, ["get_weather"]);
    }
    const stream = await client.chat.completions.create({
      model: MODEL, messages, tools, tool_choice: { type: "function", function: { name: "get_time" } }, temperature: 1, seed: 9, max_tokens: 60, stream: true,
    });
    let name = "";
    let args = "";
    let finish: string | null = null;
    for await (const chunk of stream) {
      for (const t of chunk.choices[0]?.delta.tool_calls ?? []) {
        name += t.function?.name ?? "";
        args += t.function?.arguments ?? "";
      }
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect({ name, finish }).toEqual({ name: "get_time", finish: "tool_calls" });
    expect(ajv.validate(time, JSON.parse(args))).toBe(true);
  }, 120_000);

  test("required: every seed calls one of the tools, with arguments that validate against its schema", async () => {
    const names = new Set<string>();
    for (const seed of SEEDS) {
      const r = await client.chat.completions.create({ model: MODEL, messages, tools, tool_choice: "required", temperature: 1, seed, max_tokens: 80 });
      names.add(expectValidCall(r, ["get_weather", "get_time"]).function.name);
    }
    expect(names.size).toBe(2); // the union really offers both
  }, 120_000);

  test("auto carries no constraint; a named function that is not a tool, or required without tools, is a 400", async () => {
    await client.chat.completions.create({ model: MODEL, messages, tools, max_tokens: 3 });
    expect(engine.requests.at(-1)!.params.constraint).toBeUndefined();
    const bad: [object, string][] = [
      [{ tools, tool_choice: { type: "function", function: { name: "nope" } } }, "tool_choice.function.name"],
      [{ tool_choice: "required" }, "tool_choice"],
      [{ tools: [{ type: "function", function: { name: "f", parameters: { type: "number", multipleOf: 3 } } }], tool_choice: "required" }, "tools"],
    ];
    for (const [extra, param] of bad) {
      const err = await client.chat.completions.create({ model: MODEL, messages, ...extra } as OpenAI.ChatCompletionCreateParamsNonStreaming).then(() => null, (e) => e);
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe(param);
    }
  });
});

describe("tool_choice named under --tool-call-parser deepseek_v31", () => {
  test("the call is spelled as V3.1 writes it and read back; required with several tools is a 400", async () => {
    const tok = await loadTokenizer(DSV3_TOKENIZER_DIR);
    const engine = new RandomEngine({ id: MODEL, max_model_len: 4096, vocab_size: 129280, eos_token_id: tok.eosId, bos_token_id: tok.bosId });
    const app = appAround(engine, tok, undefined, { chat: { toolCallParser: "deepseek_v31" } });
    const body = { model: MODEL, messages, tools, temperature: 1, seed: 3, max_tokens: 60 };
    const res = await app.request("/v1/chat/completions", {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...body, tool_choice: { type: "function", function: { name: "get_time" } } }),
    });
    const r = (await res.json()) as OpenAI.ChatCompletion;
    const call = r.choices[0]!.message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
    expect(call.function.name).toBe("get_time");
    expect(ajv.validate(time, JSON.parse(call.function.arguments))).toBe(true);
    // the constraint spells it V3.1's way: the name, the separator token, then the arguments
    const spelled = (text: string) => {
      const m = engine.requests.at(-1)!.params.constraint!.start();
      return tok.encode(text, { addSpecialTokens: false }).every((id) => m.accept(id)) && m.done();
    };
    expect(spelled('<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_time<｜tool▁sep｜>{"tz":"CET"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>')).toBe(true);
    expect(spelled('<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n```json\n{"tz":"CET"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>')).toBe(false);
    const required = await app.request("/v1/chat/completions", {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ ...body, tool_choice: "required" }),
    });
    expect(required.status).toBe(400);
    expect(((await required.json()) as { error: { param: string } }).error.param).toBe("tool_choice");
  }, 60_000);
});

describe("a forced call under --reasoning-parser with a template that opens <think>", () => {
  test("the call is read as a call, not as reasoning", async () => {
    const dir = mkdtempSync(join(tmpdir(), "think-tools-"));
    copyFileSync(join(DSV3_TOKENIZER_DIR, "tokenizer.json"), join(dir, "tokenizer.json"));
    const cfg = JSON.parse(readFileSync(join(DSV3_TOKENIZER_DIR, "tokenizer_config.json"), "utf8"));
    cfg.chat_template = "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}<｜Assistant｜><think>\n";
    writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(cfg));
    const tok = await loadTokenizer(dir);
    const engine = new RandomEngine({ id: MODEL, max_model_len: 4096, vocab_size: 129280, eos_token_id: tok.eosId, bos_token_id: tok.bosId });
    const app = appAround(engine, tok, undefined, { chat: { reasoningParser: "deepseek_r1" } });
    const res = await app.request("/v1/chat/completions", {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, messages, tools, tool_choice: { type: "function", function: { name: "get_time" } }, seed: 5, max_tokens: 60 }),
    });
    const m = ((await res.json()) as OpenAI.ChatCompletion).choices[0]!.message as OpenAI.ChatCompletionMessage & { reasoning_content: string | null };
    expect(m.reasoning_content).toBeNull();
    expect((m.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall).function.name).toBe("get_time");
  }, 60_000);
});
