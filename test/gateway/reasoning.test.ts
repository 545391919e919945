// --reasoning-parser deepseek_r1 (issue 15): <think>...</think> goes to reasoning_content, the rest to
// content, whole and streamed, through the official client; R1's style (the model opens <think>) and
// V3.1's (the template opens it when chat_template_kwargs says thinking).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { promptOpensThinking, ReasoningSplitter } from "../../src/gateway/reasoning.ts";
import { serveApp } from "../../src/gateway/server.ts";
import { loadTokenizer, type Tokenizer } from "../../src/tokenizer/index.ts";
import { DSV3_TOKENIZER_DIR } from "../tokenizer/dsv3-fixture.ts";
import { FakeEngine } from "./fake-engine.ts";
import { appAround, MODEL } from "./helpers.ts";

const R1 = "<think>\nThe user asks 2+2. That is 4.\n</think>\n\nThe answer is 4.";
const THOUGHT = "\nThe user asks 2+2. That is 4.\n";
const ANSWER = "The answer is 4.";

function split(s: ReasoningSplitter, pieces: string[]) {
  let reasoning = "";
  let content = "";
  for (const p of [...pieces.map((x) => s.push(x)), s.finish()]) {
    reasoning += p.reasoning;
    content += p.content;
  }
  return { reasoning, content };
}

describe("ReasoningSplitter", () => {
  test("whole or a character at a time: the thought, then the answer (without the blank line R1 puts between)", () => {
    expect(split(new ReasoningSplitter(false), [R1])).toEqual({ reasoning: THOUGHT, content: ANSWER });
    expect(split(new ReasoningSplitter(false), [...R1])).toEqual({ reasoning: THOUGHT, content: ANSWER });
  });

  test("a template that opened <think>: the output starts inside it; unfinished reasoning stays reasoning", () => {
    expect(split(new ReasoningSplitter(true), [..."I add.</think>4"])).toEqual({ reasoning: "I add.", content: "4" });
    expect(split(new ReasoningSplitter(true), ["still </thi"])).toEqual({ reasoning: "still </thi", content: "" });
  });

  test("no <think> at the start: all content, a <think> later on included", () => {
    expect(split(new ReasoningSplitter(false), [..."Hi <think>x</think>"])).toEqual({ reasoning: "", content: "Hi <think>x</think>" });
    expect(split(new ReasoningSplitter(false), ["  <thi"])).toEqual({ reasoning: "", content: "  <thi" });
  });

  test("promptOpensThinking reads the end of the prompt", () => {
    expect(promptOpensThinking("<｜Assistant｜><think>\n")).toBe(true);
    expect(promptOpensThinking("<｜Assistant｜></think>")).toBe(false);
    expect(promptOpensThinking("<think>a</think><｜Assistant｜>")).toBe(false);
  });
});

/** A server around a FakeEngine that writes `text`, with DeepSeek-V3's tokenizer and `template`. */
async function serverFor(text: string, template: string | null, reasoning: boolean) {
  const dir = mkdtempSync(join(tmpdir(), "reasoning-tok-"));
  copyFileSync(join(DSV3_TOKENIZER_DIR, "tokenizer.json"), join(dir, "tokenizer.json"));
  const cfg = JSON.parse(readFileSync(join(DSV3_TOKENIZER_DIR, "tokenizer_config.json"), "utf8"));
  if (template) cfg.chat_template = template;
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(cfg));
  const tok: Tokenizer = await loadTokenizer(dir);
  const engine = new FakeEngine({
    script: tok.encode(text, { addSpecialTokens: false }),
    info: { vocab_size: 129280, max_model_len: 4096, eos_token_id: tok.eosId, bos_token_id: tok.bosId },
  });
  const app = appAround(engine, tok, undefined, { chat: { reasoningParser: reasoning ? "deepseek_r1" : null } });
  const server = serveApp(app, { port: 0 });
  const client = new OpenAI({ baseURL: `http://127.0.0.1:${server.port}/v1`, apiKey: "none", maxRetries: 0, timeout: 10_000 });
  return { server, client, engine, tok };
}

type WithReasoning<T> = T & { reasoning_content?: string | null };
const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: "user", content: "What is 2+2?" }];

async function streamed(client: OpenAI, extra: object = {}) {
  const stream = await client.chat.completions.create({ model: MODEL, messages, temperature: 0, stream: true, ...extra });
  let reasoning = "";
  let content = "";
  let both = 0;
  for await (const chunk of stream) {
    const d = chunk.choices[0]?.delta as WithReasoning<OpenAI.ChatCompletionChunk.Choice.Delta> | undefined;
    if (!d) continue;
    reasoning += d.reasoning_content ?? "";
    content += d.content ?? "";
    if (d.reasoning_content && d.content) both++;
  }
  return { reasoning, content, both };
}

describe("reasoning_content over /v1/chat/completions (openai client)", () => {
  describe("R1 style: the model opens <think>", () => {
    let s: Awaited<ReturnType<typeof serverFor>>;
    beforeAll(async () => (s = await serverFor(R1, null, true)), 60_000);
    afterAll(() => s.server.stop(true));

    test("not streamed: message.reasoning_content and message.content", async () => {
      const r = await s.client.chat.completions.create({ model: MODEL, messages, temperature: 0 });
      const m = r.choices[0]!.message as WithReasoning<OpenAI.ChatCompletionMessage>;
      expect(m.reasoning_content).toBe(THOUGHT);
      expect(m.content).toBe(ANSWER);
      expect(r.choices[0]!.finish_reason).toBe("stop");
    });

    test("streamed: delta.reasoning_content, then delta.content, never both in one chunk", async () => {
      expect(await streamed(s.client)).toEqual({ reasoning: THOUGHT, content: ANSWER, both: 0 });
    });
  });

  describe("V3.1 style: the template opens <think> when chat_template_kwargs says thinking", () => {
    const template = "{{ bos_token }}{% for m in messages %}<｜User｜>{{ m.content }}{% endfor %}<｜Assistant｜>{% if thinking %}<think>{% else %}</think>{% endif %}";
    let s: Awaited<ReturnType<typeof serverFor>>;
    beforeAll(async () => (s = await serverFor("Two and two.</think>4", template, true)), 60_000);
    afterAll(() => s.server.stop(true));

    test("thinking: the output starts inside the reasoning, streamed or not", async () => {
      const kwargs = { chat_template_kwargs: { thinking: true } } as object;
      const r = await s.client.chat.completions.create({ model: MODEL, messages, temperature: 0, ...kwargs });
      const m = r.choices[0]!.message as WithReasoning<OpenAI.ChatCompletionMessage>;
      expect({ reasoning: m.reasoning_content, content: m.content }).toEqual({ reasoning: "Two and two.", content: "4" });
      expect(s.tok.decode(s.engine.requests.at(-1)!.prompt_ids)).toEndWith("<｜Assistant｜><think>");
      expect(await streamed(s.client, kwargs)).toEqual({ reasoning: "Two and two.", content: "4", both: 0 });
    });

    test("not thinking: the template closed <think>, so everything is content", async () => {
      const r = await s.client.chat.completions.create({ model: MODEL, messages, temperature: 0 });
      const m = r.choices[0]!.message as WithReasoning<OpenAI.ChatCompletionMessage>;
      expect(m.reasoning_content).toBeNull();
      expect(m.content).toBe("Two and two.</think>4");
    });
  });

  test("without --reasoning-parser the thought stays in content and there is no reasoning_content", async () => {
    const s = await serverFor(R1, null, false);
    try {
      const r = await s.client.chat.completions.create({ model: MODEL, messages, temperature: 0 });
      const m = r.choices[0]!.message as WithReasoning<OpenAI.ChatCompletionMessage>;
      expect(m.content).toBe(R1);
      expect("reasoning_content" in m).toBe(false);
    } finally {
      s.server.stop(true);
    }
  }, 60_000);
});
