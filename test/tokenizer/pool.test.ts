// The tokenizer off the HTTP thread (issue 13, item 6): the worker pool gives the same ids as the
// tokenizer itself, and a text whose bytes cannot fit the limit is refused without being tokenized.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { fewestTokens, maxTokenBytes } from "../../src/tokenizer/bound.ts";
import { loadTokenizer, type Tokenizer } from "../../src/tokenizer/index.ts";
import { TokenizerPool } from "../../src/tokenizer/pool.ts";
import { inlineEncoder, runEncodeJob, sizedEncoder } from "../../src/tokenizer/prompt.ts";

const MODEL = join(import.meta.dir, "../../models/fortune-dsv3");
const TEXT = "Hello world! Caf\u00e9 \u{1F600} 12345 -- \u65e5\u672c\u8a9e <\uff5cend\u2581of\u2581sentence\uff5c> the end.";

describe("the byte bound", () => {
  let tok: Tokenizer;
  beforeAll(async () => (tok = await loadTokenizer(MODEL)));

  test("no token of the bundled tokenizer covers more bytes than the bound", async () => {
    const bound = tok.maxTokenBytes;
    expect(bound).toBeGreaterThan(1);
    expect(Number.isFinite(bound)).toBe(true);
    for (let id = 0; id < tok.vocabSize; id++) {
      const text = tok.decode([id]);
      if (text.includes("\ufffd")) continue; // a partial UTF-8 sequence: fewer raw bytes than shown
      expect(Buffer.byteLength(text)).toBeLessThanOrEqual(bound);
    }
    for (const text of [TEXT, "a".repeat(5000), "\u{1F600}".repeat(700), " ".repeat(3000)]) {
      expect(tok.encode(text, { addSpecialTokens: false }).length).toBeGreaterThanOrEqual(fewestTokens(text, bound));
    }
  });

  test("a tokenizer that may drop input has no bound", () => {
    const base = { model: { vocab: { a: 0, bb: 1 } } };
    expect(maxTokenBytes(base)).toBe(2);
    expect(maxTokenBytes({ ...base, normalizer: { type: "NFKC" } })).toBe(8);
    expect(maxTokenBytes({ ...base, normalizer: { type: "Strip" } })).toBe(Infinity);
    expect(maxTokenBytes({ ...base, pre_tokenizer: { type: "WhitespaceSplit" } })).toBe(Infinity);
    expect(maxTokenBytes({ ...base, pre_tokenizer: { type: "Split", behavior: "Removed" } })).toBe(Infinity);
    expect(fewestTokens("x".repeat(100), Infinity)).toBe(0);
  });

  test("a text too long for the limit is refused before it is tokenized", () => {
    let encoded = 0;
    const codec = { ...tok, maxTokenBytes: tok.maxTokenBytes, encode: (t: string) => (encoded++, tok.encode(t)) };
    const r = runEncodeJob(codec, { kind: "text", text: "x".repeat(3_900_000), addSpecialTokens: true, limit: 4096 });
    expect(r).toEqual({ ok: false, reason: "too_long", atLeast: Math.ceil(3_900_000 / tok.maxTokenBytes) });
    expect(encoded).toBe(0);
  });
});

describe("the worker pool", () => {
  let pool: TokenizerPool;
  let tok: Tokenizer;
  beforeAll(async () => {
    [pool, tok] = await Promise.all([TokenizerPool.start(MODEL, 2), loadTokenizer(MODEL)]);
  });
  afterAll(() => pool.close());

  test("the same ids as the tokenizer, for texts and chats, many at once", async () => {
    const inline = inlineEncoder(tok);
    const jobs = [
      { kind: "text" as const, text: TEXT, addSpecialTokens: true, limit: 10_000 },
      { kind: "text" as const, text: TEXT, addSpecialTokens: false, limit: 10_000 },
      { kind: "chat" as const, messages: [{ role: "system", content: "Be brief." }, { role: "user", content: TEXT }], addGenerationPrompt: true, limit: 10_000 },
    ];
    const many = Array.from({ length: 12 }, (_, i) => jobs[i % jobs.length]!);
    const got = await Promise.all(many.map((j) => pool.encode(j)));
    const want = await Promise.all(many.map((j) => inline.encode(j)));
    expect(got).toEqual(want);
    expect(want[0]).toMatchObject({ ok: true });
    expect((want[0] as { ids: number[] }).ids).toEqual(tok.encode(TEXT));
    expect(pool.inFlight).toBe(0);
  });

  test("too long and template errors come back as results, not throws", async () => {
    expect(await pool.encode({ kind: "text", text: "y".repeat(100_000), addSpecialTokens: true, limit: 100 }))
      .toMatchObject({ ok: false, reason: "too_long" });
    const refusing = { ...tok, applyChatTemplate: () => { throw new Error("Conversation roles must alternate"); } };
    expect(runEncodeJob(refusing, { kind: "chat", messages: [{ role: "user", content: "a" }], addGenerationPrompt: true, limit: 1000 }))
      .toEqual({ ok: false, reason: "template", message: "Conversation roles must alternate" });
  });
});

describe("sizedEncoder", () => {
  test("small prompts stay inline, large ones go to the pool", async () => {
    const seen: string[] = [];
    const tagged = (tag: string) => ({ encode: async () => (seen.push(tag), { ok: true as const, ids: [] }) });
    const enc = sizedEncoder(tagged("inline"), tagged("pool"), 10);
    await enc.encode({ kind: "text", text: "short", addSpecialTokens: true, limit: 100 });
    await enc.encode({ kind: "text", text: "x".repeat(11), addSpecialTokens: true, limit: 100 });
    await enc.encode({ kind: "chat", messages: [{ role: "user", content: "hi" }, { role: "user", content: null }], addGenerationPrompt: true, limit: 100 });
    await enc.encode({ kind: "chat", messages: [{ role: "user", content: "123456" }, { role: "user", content: "789012" }], addGenerationPrompt: true, limit: 100 });
    const tools = [{ type: "function", function: { name: "f", parameters: { type: "object" } } }];
    await enc.encode({ kind: "chat", messages: [{ role: "user", content: "hi" }], addGenerationPrompt: true, tools, limit: 100 });
    expect(seen).toEqual(["inline", "pool", "inline", "pool", "pool"]); // the tools are part of the prompt
  });
});
