// Exact ids and rendered chat text against the fixtures' goldens (ids from the oracle's bpe.py).
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { loadTokenizer } from "../../src/tokenizer/index.ts";

const ROOT = join(import.meta.dir, "..", "..");
const CASES = [
  { name: "tiny-dsv3", dir: "test/fixtures/tiny-dsv3", golden: "test/fixtures/tiny-dsv3/golden/golden.json" },
  { name: "tiny-dsv3-bf16", dir: "test/fixtures/tiny-dsv3-bf16", golden: "test/fixtures/tiny-dsv3/golden/golden.json" },
  { name: "fortune-dsv3", dir: "models/fortune-dsv3", golden: "test/fixtures/fortune-dsv3/golden/golden.json" },
];

type EncodeEx = { text: string; ids: number[] };
type ChatEx = {
  messages: { role: string; content: string }[];
  add_generation_prompt: boolean;
  text: string;
  ids: number[];
};

/** golden.json keys carry explanations in their names ("encode_examples (BOS added ...)"). */
function section<T>(tok: Record<string, unknown>, prefix: string): T[] {
  const key = Object.keys(tok).find((k) => k.startsWith(prefix));
  if (!key) throw new Error(`golden has no ${prefix}`);
  return tok[key] as T[];
}

for (const c of CASES) {
  describe(`tokenizer golden: ${c.name}`, async () => {
    const tok = await loadTokenizer(join(ROOT, c.dir));
    const golden = (await Bun.file(join(ROOT, c.golden)).json()).tokenizer as Record<string, unknown>;
    const encodeEx = section<EncodeEx>(golden, "encode_examples");
    const chatEx = section<ChatEx>(golden, "chat_template_examples");

    test("special ids", () => {
      expect(tok.bosId).toBe(0);
      expect(tok.eosId).toBe(1);
      expect(tok.idToToken(0)).toBe("<｜begin▁of▁sentence｜>");
      expect(tok.tokenToId("<｜end▁of▁sentence｜>")).toBe(1);
      expect(tok.padId).toBe(1); // tokenizer_config.json's pad_token is the EOS string, as in V3
    });

    for (const ex of encodeEx) {
      test(`encode ${JSON.stringify(ex.text).slice(0, 40)}`, () => {
        expect(tok.encode(ex.text)).toEqual(ex.ids);
        expect(tok.encode(ex.text, { addSpecialTokens: false })).toEqual(ex.ids.slice(1));
        expect(tok.decode(ex.ids)).toBe("<｜begin▁of▁sentence｜>" + ex.text);
      });
    }

    for (const [i, ex] of chatEx.entries()) {
      test(`chat template example ${i}`, () => {
        const opts = { addGenerationPrompt: ex.add_generation_prompt };
        expect(tok.applyChatTemplate(ex.messages, opts)).toBe(ex.text);
        expect(tok.encodeChat(ex.messages, opts)).toEqual(ex.ids);
      });
    }
  });
}
