// Behaviour beyond the goldens: round trips, partial UTF-8, specials, tool chats, error messages.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadTokenizer, type ChatMessage } from "../../src/tokenizer/index.ts";

const FORTUNE = join(import.meta.dir, "..", "..", "models", "fortune-dsv3");
const TINY = join(import.meta.dir, "..", "fixtures", "tiny-dsv3");

const TEXTS = [
  "",
  " ",
  "a",
  " leading space",
  "trailing space ",
  "line\r\nbreaks\n\n\ttabs\u000b",
  "Numbers 1234567890 and 3.14159, -42",
  "naïve café — Ünïcödé ß ẞ",
  "日本語のテキストと漢字、ひらがな、カタカナ",
  "中文测试：你好，世界！",
  "한국어 텍스트",
  "emoji 😀👍🏽 👨‍👩‍👧‍👦 🇯🇵 family",
  "math ∑∫√∞ ≠ ≤ ≥ and arrows ←→",
  "code: `const x = {a: [1, 2]};` // comment",
  "\u0000 control \u0007 chars \u001f",
  "mixed <｜User｜> marker in text <｜Assistant｜>",
  "<｜end▁of▁sentence｜>",
];

for (const [name, dir] of [["fortune", FORTUNE], ["tiny", TINY]] as const) {
  describe(`tokenizer round trip: ${name}`, async () => {
    const tok = await loadTokenizer(dir);
    for (const text of TEXTS) {
      test(JSON.stringify(text).slice(0, 30), () => {
        const ids = tok.encode(text, { addSpecialTokens: false });
        expect(tok.decode(ids)).toBe(text);
        const withBos = tok.encode(text);
        expect(withBos[0]).toBe(tok.bosId);
        expect(withBos.slice(1)).toEqual(ids);
        expect(tok.decode(withBos, { skipSpecialTokens: true })).toBe(text.replace("<｜end▁of▁sentence｜>", ""));
      });
    }
  });
}

describe("tokenizer behaviour (fortune)", async () => {
  const tok = await loadTokenizer(FORTUNE);
  const config = await Bun.file(join(FORTUNE, "config.json")).json();

  test("vocab is smaller than the model's rows; ids without a token decode to nothing", () => {
    expect(tok.vocabSize).toBeLessThanOrEqual(config.vocab_size);
    expect(tok.vocabSize).toBe(4091);
    expect(tok.idToToken(tok.vocabSize)).toBeUndefined();
    const ids = tok.encode("Hi", { addSpecialTokens: false });
    expect(tok.decode([...ids, config.vocab_size - 1, ...ids])).toBe("HiHi");
  });

  test("every prefix of a multi-byte text decodes without throwing", () => {
    const text = "日本語 😀👍🏽 café";
    const ids = tok.encode(text, { addSpecialTokens: false });
    expect(ids.length).toBeGreaterThan(text.length / 2); // byte tokens: prefixes cut code points
    let sawPartial = false;
    for (let n = 0; n <= ids.length; n++) {
      const s = tok.decode(ids.slice(0, n));
      if (s.includes("\uFFFD")) sawPartial = true;
    }
    expect(sawPartial).toBe(true);
    expect(tok.decode(ids)).toBe(text);
  });

  test("skipSpecialTokens drops BOS/EOS but keeps chat markers (special: false, as in V3)", () => {
    const ids = tok.encode("<｜User｜>Hi<｜Assistant｜>Yo<｜end▁of▁sentence｜>");
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe("<｜User｜>Hi<｜Assistant｜>Yo");
  });

  test("markers encode as single ids", () => {
    for (const m of ["<｜User｜>", "<｜Assistant｜>", "<｜tool▁calls▁begin｜>", "<｜tool▁sep｜>"]) {
      const id = tok.tokenToId(m);
      expect(id).toBeNumber();
      expect(tok.encode(m, { addSpecialTokens: false })).toEqual([id!]);
    }
  });

  test("tool-call conversation renders the V3 tool branches", () => {
    const messages: ChatMessage[] = [
      { role: "system", content: "Be brief." },
      { role: "system", content: "Use tools." },
      { role: "user", content: "Weather in Paris?" },
      {
        role: "assistant",
        content: null,
        tool_calls: [{ type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }],
      },
      { role: "tool", content: "sunny", tool_call_id: "c1" },
      { role: "assistant", content: "It is sunny." },
    ];
    const text = tok.applyChatTemplate(messages, { addGenerationPrompt: true });
    expect(text).toBe(
      "<｜begin▁of▁sentence｜>Be brief.\n\nUse tools.<｜User｜>Weather in Paris?" +
        "<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n" +
        '```json\n{"city":"Paris"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜><｜end▁of▁sentence｜>' +
        "<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>sunny<｜tool▁output▁end｜><｜tool▁outputs▁end｜>" +
        "It is sunny.<｜end▁of▁sentence｜><｜Assistant｜>",
    );
    const ids = tok.encodeChat(messages, { addGenerationPrompt: true });
    expect(ids.filter((i) => i === tok.bosId)).toHaveLength(1);
    expect(tok.decode(ids)).toBe(text);
  });

  test("no generation prompt; undefined tool_calls is not a tool call", () => {
    const messages: ChatMessage[] = [
      { role: "user", content: "Hi" },
      { role: "assistant", content: "Hello", tool_calls: undefined },
    ];
    expect(tok.applyChatTemplate(messages, { addGenerationPrompt: false })).toBe(
      "<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜>Hello<｜end▁of▁sentence｜>",
    );
  });
});

describe("tokenizer errors", () => {
  const copyConfig = (dir: string) => copyFileSync(join(FORTUNE, "tokenizer_config.json"), join(dir, "tokenizer_config.json"));

  test("missing tokenizer.json names the file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tok-missing-"));
    copyConfig(dir);
    await expect(loadTokenizer(dir)).rejects.toThrow(/tokenizer\.json not found: .*tokenizer\.json/);
  });

  test("unparsable tokenizer.json names the file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tok-bad-"));
    copyConfig(dir);
    writeFileSync(join(dir, "tokenizer.json"), "{ not json");
    await expect(loadTokenizer(dir)).rejects.toThrow(/invalid tokenizer\.json \(.*tokenizer\.json\)/);
  });

  test("tokenizer.json without a model names the file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tok-nomodel-"));
    copyConfig(dir);
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify({ version: "1.0" }));
    await expect(loadTokenizer(dir)).rejects.toThrow(/invalid tokenizer\.json .*model/);
  });

  test("raise_exception in a template surfaces as an error", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tok-raise-"));
    copyFileSync(join(FORTUNE, "tokenizer.json"), join(dir, "tokenizer.json"));
    const cfg = await Bun.file(join(FORTUNE, "tokenizer_config.json")).json();
    cfg.chat_template = "{% for m in messages %}{% if m.role == 'bad' %}{{ raise_exception('bad role') }}{% endif %}{{ m.content }}{% endfor %}";
    writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(cfg));
    const tok = await loadTokenizer(dir);
    expect(tok.applyChatTemplate([{ role: "user", content: "ok" }], { addGenerationPrompt: false })).toBe("ok");
    expect(() => tok.applyChatTemplate([{ role: "bad", content: "x" }], { addGenerationPrompt: false })).toThrow(/bad role/);
  });
});

describe("BOS policy", () => {
  async function withConfig(patch: (cfg: Record<string, unknown>) => void) {
    const dir = mkdtempSync(join(tmpdir(), "tok-bos-"));
    copyFileSync(join(FORTUNE, "tokenizer.json"), join(dir, "tokenizer.json"));
    const cfg = await Bun.file(join(FORTUNE, "tokenizer_config.json")).json();
    patch(cfg);
    writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(cfg));
    return loadTokenizer(dir);
  }

  test("without add_bos_token the tokenizer.json post_processor prepends BOS", async () => {
    const tok = await withConfig((c) => delete c.add_bos_token);
    expect(tok.encode("Hi")[0]).toBe(0);
    expect(tok.encode("Hi", { addSpecialTokens: false })[0]).not.toBe(0);
  });

  test("add_bos_token false overrides the post_processor (as transformers does)", async () => {
    const tok = await withConfig((c) => (c.add_bos_token = false));
    expect(tok.encode("Hi")).toEqual(tok.encode("Hi", { addSpecialTokens: false }));
  });

  test("add_eos_token appends EOS", async () => {
    const tok = await withConfig((c) => (c.add_eos_token = true));
    const ids = tok.encode("Hi");
    expect([ids[0], ids[ids.length - 1]]).toEqual([0, 1]);
  });
});
