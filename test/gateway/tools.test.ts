// Tool calling (issue 15): DeepSeek-V3's tool-call tokens in the output read back as OpenAI tool_calls,
// whole and streamed, through the official client, with DeepSeek-V3's real tokenizer and template.
// A FakeEngine "generates" the exact tokens of a call, so the parsing is driven token by token.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { ToolCallParser, type ToolEvent } from "../../src/gateway/tools.ts";
import { serveApp } from "../../src/gateway/server.ts";
import { loadTokenizer, type Tokenizer } from "../../src/tokenizer/index.ts";
import { DSV3_TOKENIZER_DIR } from "../tokenizer/dsv3-fixture.ts";
import { FakeEngine } from "./fake-engine.ts";
import { appAround, MODEL } from "./helpers.ts";

const CALL_V3 = "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\", \"unit\": \"C\"}\n```<｜tool▁call▁end｜>" +
  "\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n```json\n{\"tz\": \"CET\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
const CALL_V31 = "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"city\": \"Paris\", \"unit\": \"C\"}<｜tool▁call▁end｜>" +
  "<｜tool▁call▁begin｜>get_time<｜tool▁sep｜>{\"tz\": \"CET\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
const WANT = [
  { name: "get_weather", arguments: '{"city": "Paris", "unit": "C"}' },
  { name: "get_time", arguments: '{"tz": "CET"}' },
];

const tools: OpenAI.ChatCompletionTool[] = [
  { type: "function", function: { name: "get_weather", description: "Weather in a city.", parameters: { type: "object", properties: { city: { type: "string" }, unit: { enum: ["C", "F"] } }, required: ["city"] } } },
  { type: "function", function: { name: "get_time", parameters: { type: "object", properties: { tz: { type: "string" } } } } },
];
const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: "user", content: "Weather and time in Paris?" }];

/** Calls as the parser's events describe them, plus the content around them. */
function replay(events: ToolEvent[]) {
  const calls: { id: string; name: string; arguments: string }[] = [];
  let content = "";
  for (const ev of events) {
    if (ev.type === "content") content += ev.text;
    else if (ev.type === "call") calls[ev.index] = { id: ev.id, name: ev.name, arguments: "" };
    else calls[ev.index]!.arguments += ev.text;
  }
  return { content, calls: calls.map(({ name, arguments: a }) => ({ name, arguments: a })), ids: calls.map((c) => c.id) };
}

describe("ToolCallParser", () => {
  for (const [label, text] of [["V3 (function, ```json fence)", CALL_V3], ["V3.1 (name<｜tool▁sep｜>arguments)", CALL_V31]] as const) {
    test(`${label}: whole, or a character at a time, gives the same calls and content`, () => {
      const whole = new ToolCallParser();
      const a = replay([...whole.push(`Let me check.${text}`), ...whole.finish()]);
      expect(a.content).toBe("Let me check.");
      expect(a.calls).toEqual(WANT);
      expect(a.ids.every((id) => /^call_[0-9a-f]{24}$/.test(id))).toBe(true);
      const bytes = new ToolCallParser();
      const events = [...`Let me check.${text}`].flatMap((ch) => bytes.push(ch));
      const b = replay([...events, ...bytes.finish()]);
      expect(b.content).toBe(a.content);
      expect(b.calls).toEqual(WANT);
      // the closing fence and markers never leak into the streamed arguments
      expect(events.filter((e) => e.type === "arguments").map((e) => (e as { text: string }).text).join("")).toBe(WANT.map((w) => w.arguments).join(""));
    });
  }

  test("text without calls is content, a marker-like prefix included; a call cut short keeps what it has", () => {
    const p = new ToolCallParser();
    expect(replay([...p.push("a <｜tool"), ...p.push("▁x｜> b"), ...p.finish()]).content).toBe("a <｜tool▁x｜> b");
    const cut = new ToolCallParser();
    const r = replay([...cut.push('<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n```json\n{"tz": "C'), ...cut.finish()]);
    expect(r.calls).toEqual([{ name: "get_time", arguments: '{"tz": "C' }]);
  });
});

describe("tools over /v1/chat/completions (openai client, DeepSeek-V3 tokenizer)", () => {
  let tok: Tokenizer;
  let engine: FakeEngine;
  let server: ReturnType<typeof serveApp>;
  let client: OpenAI;
  const prompt = (i: number) => tok.decode(engine.requests.at(i)!.prompt_ids);

  beforeAll(async () => {
    tok = await loadTokenizer(DSV3_TOKENIZER_DIR);
    const script = tok.encode(CALL_V3, { addSpecialTokens: false });
    engine = new FakeEngine({ script, info: { vocab_size: 129280, max_model_len: 4096, eos_token_id: tok.eosId, bos_token_id: tok.bosId } });
    server = serveApp(appAround(engine, tok), { port: 0 });
    client = new OpenAI({ baseURL: `http://127.0.0.1:${server.port}/v1`, apiKey: "none", maxRetries: 0, timeout: 10_000 });
  }, 60_000);
  afterAll(() => server.stop(true));

  test("the model's tool-call tokens come back as tool_calls with ids; finish_reason tool_calls; the tools were in the prompt", async () => {
    const r = await client.chat.completions.create({ model: MODEL, messages, tools, temperature: 0 });
    const choice = r.choices[0]!;
    expect(choice.finish_reason).toBe("tool_calls");
    expect(choice.message.content).toBeNull();
    const calls = choice.message.tool_calls!.map((c) => c as OpenAI.ChatCompletionMessageFunctionToolCall);
    expect(calls.map((c) => ({ name: c.function.name, arguments: c.function.arguments }))).toEqual(WANT);
    expect(calls.every((c) => c.type === "function" && /^call_/.test(c.id))).toBe(true);
    expect(new Set(calls.map((c) => c.id)).size).toBe(2);
    expect(prompt(-1)).toContain("### get_weather\nDescription: Weather in a city.");
    expect(prompt(-1)).toEndWith("<｜User｜>Weather and time in Paris?<｜Assistant｜>");
  });

  test("streamed as OpenAI streams them: id, type and name first with empty arguments, then argument pieces", async () => {
    const stream = await client.chat.completions.create({ model: MODEL, messages, tools, temperature: 0, stream: true });
    const deltas: OpenAI.ChatCompletionChunk.Choice.Delta.ToolCall[] = [];
    let finish: string | null = null;
    let content = "";
    for await (const chunk of stream) {
      const c = chunk.choices[0];
      if (!c) continue;
      deltas.push(...(c.delta.tool_calls ?? []));
      content += c.delta.content ?? "";
      finish = c.finish_reason ?? finish;
    }
    expect(finish).toBe("tool_calls");
    expect(content).toBe("");
    for (const index of [0, 1]) {
      const mine = deltas.filter((d) => d.index === index);
      expect(mine[0]).toMatchObject({ index, type: "function", function: { name: WANT[index]!.name, arguments: "" } });
      expect(mine[0]!.id).toMatch(/^call_/);
      expect(mine.length).toBeGreaterThan(2); // the arguments arrive in pieces as the tokens do
      expect(mine.slice(1).every((d) => d.id === undefined && d.function?.name === undefined)).toBe(true);
      expect(mine.map((d) => d.function?.arguments ?? "").join("")).toBe(WANT[index]!.arguments);
    }
  });

  test("tool_choice none: the model is shown no tools and its output is plain content", async () => {
    const r = await client.chat.completions.create({ model: MODEL, messages, tools, tool_choice: "none", temperature: 0 });
    expect(r.choices[0]!.message.tool_calls ?? []).toEqual([]);
    expect(r.choices[0]!.message.content).toBe(CALL_V3);
    expect(r.choices[0]!.finish_reason).toBe("stop");
    expect(prompt(-1)).not.toContain("## Tools");
  });

  test("a tool round trip: the assistant's calls and the tool's answer go back through the template", async () => {
    const first = await client.chat.completions.create({ model: MODEL, messages, tools, temperature: 0 });
    const said = first.choices[0]!.message;
    const calls = said.tool_calls!.map((c) => c as OpenAI.ChatCompletionMessageFunctionToolCall);
    const followUp: OpenAI.ChatCompletionMessageParam[] = [
      ...messages,
      said as OpenAI.ChatCompletionAssistantMessageParam,
      { role: "tool", tool_call_id: calls[0]!.id, content: '{"sky": "sunny", "temp": 21}' },
      { role: "tool", tool_call_id: calls[1]!.id, content: '{"time": "14:05"}' },
    ];
    const r = await client.chat.completions.create({ model: MODEL, messages: followUp, tools, temperature: 0 });
    expect(r.choices[0]!.finish_reason).toBe("tool_calls"); // the fake model calls again: it only knows one script
    const text = prompt(-1);
    expect(text).toContain(`<｜User｜>Weather and time in Paris?<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n\`\`\`json\n${WANT[0]!.arguments}\n\`\`\`<｜tool▁call▁end｜>`);
    expect(text).toEndWith('<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>{"sky": "sunny", "temp": 21}<｜tool▁output▁end｜>\n<｜tool▁output▁begin｜>{"time": "14:05"}<｜tool▁output▁end｜><｜tool▁outputs▁end｜>');
  });

  test("parallel_tool_calls false: the first call is the answer", async () => {
    const r = await client.chat.completions.create({ model: MODEL, messages, tools, parallel_tool_calls: false, temperature: 0 });
    const calls = r.choices[0]!.message.tool_calls!.map((c) => (c as OpenAI.ChatCompletionMessageFunctionToolCall).function);
    expect(calls).toEqual([WANT[0]!]);
    expect(r.choices[0]!.finish_reason).toBe("tool_calls");
  });

  test("a server that reads no tool calls (toolCallParser null) refuses tools, unless tool_choice is none", async () => {
    const app = appAround(engine, tok, undefined, { chat: { toolCallParser: null } });
    const ask = (extra: object) => app.request("/v1/chat/completions", {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: MODEL, messages, tools, max_tokens: 2, ...extra }),
    });
    const refused = await ask({});
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: { param: string } }).error.param).toBe("tools");
    expect((await ask({ tool_choice: "none" })).status).toBe(200);
  });

  test("no tools: the same tokens are content (nothing is parsed)", async () => {
    const r = await client.chat.completions.create({ model: MODEL, messages, temperature: 0 });
    expect(r.choices[0]!.message.content).toBe(CALL_V3);
    expect(r.choices[0]!.message.tool_calls).toBeUndefined();
  });
});
