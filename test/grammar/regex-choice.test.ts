// guided_regex and guided_choice under a random model: every output is a full match of the
// pattern (checked with the JS RegExp engine) or exactly one of the choices.
import { describe, expect, test } from "bun:test";
import { compileChoice, compileRegex, GrammarError, sequence, literalText, literalTokens, jsonSchemaPiece } from "../../src/grammar/index.ts";
import { drive, toyVocab } from "./drive.ts";

const PATTERNS = [
  "\\d{3}-\\d{4}",
  "(yes|no|maybe)",
  "[A-Z][a-z]{1,8}( [A-Z][a-z]{1,8})?",
  "-?(0|[1-9]\\d{0,5})(\\.\\d{1,3})?",
  "[^\"\\\\]{0,6}!",
  "(ab|c)+d?",
  "[\\w.-]+@[a-z]+\\.(com|org)",
  "caf[eé] 日本{1,2}",
];

describe("regex constraint", () => {
  test("every output fully matches, 150 seeds per pattern", () => {
    const v = toyVocab();
    for (const p of PATTERNS) {
      const g = compileRegex(p, v), re = new RegExp(`^(?:${p})$`, "u");
      for (let seed = 0; seed < 150; seed++) {
        const r = drive(g, seed, 40);
        if (!re.test(r.text)) throw new Error(`${p} seed ${seed}: ${JSON.stringify(r.text)} does not match`);
      }
    }
  }, 60_000);

  test("unbounded repetition still closes within max_tokens", () => {
    const v = toyVocab(), g = compileRegex("(ab|c)+x", v);
    for (let seed = 0; seed < 100; seed++) {
      const r = drive(g, seed, 3 + (seed % 7));
      expect(r.ended).not.toBe("length");
      expect(/^(?:ab|c)+x$/.test(r.text)).toBe(true);
    }
  });

  test("unsupported syntax is refused", () => {
    for (const p of ["(?=a)b", "a\\1", "a{3,1}", "(a"]) expect(() => compileRegex(p, toyVocab())).toThrow(GrammarError);
  });
});

describe("choice and sequences", () => {
  test("guided_choice gives exactly one of the choices", () => {
    const choices = ["positive", "negative", "neutral", "pos"];
    const g = compileChoice(choices, toyVocab());
    const seen = new Set<string>();
    for (let seed = 0; seed < 200; seed++) {
      const r = drive(g, seed, 20);
      expect(choices).toContain(r.text);
      seen.add(r.text);
    }
    expect(seen.size).toBe(choices.length);
  });

  test("fixed tokens, text and JSON one after another", () => {
    const v = toyVocab(), EOS = v.end[0];
    // the toy EOS doubles as a "special" marker here: fixed tokens are allowed whatever their bytes
    const g = sequence([literalText("call:"), jsonSchemaPiece({ type: "object", properties: { a: { type: "integer", minimum: 1, maximum: 3 } }, required: ["a"], additionalProperties: false }), literalTokens([EOS - 1])], v);
    for (let seed = 0; seed < 50; seed++) {
      const r = drive(g, seed, 30);
      expect(r.text.startsWith("call:")).toBe(true);
      expect(r.tokens[r.tokens.length - 1]).toBe(EOS - 1);
      const json = r.text.slice(5, -(v.bytes[EOS - 1]!.length));
      expect([1, 2, 3]).toContain(JSON.parse(json).a);
    }
  });
});
