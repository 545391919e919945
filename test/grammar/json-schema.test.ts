// JSON Schema constraints under a random model (uniform among allowed tokens), over many seeds, on
// a toy byte vocabulary and on DeepSeek-V3's real one: every output parses and validates (ajv, a
// real validator), and a bounded schema always closes within max_tokens.
import { describe, expect, test } from "bun:test";
import Ajv from "ajv";
import { compileJsonObject, compileJsonSchema, GrammarError, vocabFromTokenizer } from "../../src/grammar/index.ts";
import { loadTokenizer } from "../../src/tokenizer/index.ts";
import { DSV3_TOKENIZER_DIR } from "../tokenizer/dsv3-fixture.ts";
import { drive, toyVocab } from "./drive.ts";

const ajv = new Ajv({ strict: false });

/** Every keyword the issue lists, nested. */
export const PERSON = {
  type: "object",
  properties: {
    name: { type: "string", minLength: 2, maxLength: 8 },
    age: { type: "integer", minimum: 18, maximum: 99 },
    score: { type: "number", minimum: -1.5, maximum: 2.25 },
    role: { enum: ["admin", "user", 7, null] },
    kind: { const: "person" },
    active: { type: "boolean" },
    tags: { type: "array", items: { type: "string", maxLength: 4 }, maxItems: 3 },
    address: {
      type: "object",
      properties: { city: { type: "string", maxLength: 10 }, zip: { type: "integer", minimum: 0, maximum: 99999 } },
      required: ["city"],
      additionalProperties: false,
    },
    nick: { type: ["string", "null"], maxLength: 5 },
  },
  required: ["name", "age", "kind", "address"],
  additionalProperties: false,
};

const SCHEMAS: Record<string, object> = {
  person: PERSON,
  matrix: { type: "array", items: { type: "array", items: { type: "integer", minimum: -5, maximum: 5 }, minItems: 1, maxItems: 3 }, minItems: 2, maxItems: 3 },
  floats: { type: "object", properties: { x: { type: "number", minimum: 0.5, maximum: 0.75 }, y: { type: "number", maximum: -1000 } }, required: ["x", "y"], additionalProperties: false },
  refs: { $defs: { pt: { type: "object", properties: { x: { type: "integer" } }, required: ["x"], additionalProperties: false } }, type: "array", items: { $ref: "#/$defs/pt" }, maxItems: 2 },
  words: { type: "string", minLength: 3, maxLength: 6 },
  patterns: {
    type: "object",
    properties: { id: { type: "string", pattern: "^[A-Z]{2}-\\d{3}$" }, note: { type: "string", pattern: "o\"k", maxLength: 6 }, tail: { type: "string", pattern: "\\\\$" } },
    required: ["id", "note", "tail"],
    additionalProperties: false,
  },
};

function fuzz(vocab: ReturnType<typeof toyVocab>, seeds: number, maxTokens: number) {
  for (const [name, schema] of Object.entries(SCHEMAS)) {
    const g = compileJsonSchema(schema, vocab), validate = ajv.compile(schema);
    for (let seed = 0; seed < seeds; seed++) {
      const r = drive(g, seed, maxTokens);
      expect({ name, seed, ended: r.ended }).toEqual({ name, seed, ended: "done" });
      const value = JSON.parse(r.text);
      if (!validate(value)) throw new Error(`${name} seed ${seed}: ${r.text} fails: ${ajv.errorsText(validate.errors)}`);
    }
  }
}

describe("JSON Schema constraint, random model", () => {
  test("toy vocabulary: every output validates, 300 seeds per schema", () => fuzz(toyVocab(), 300, 400), 120_000);

  test("DeepSeek-V3's vocabulary (129280): every output validates, 40 seeds per schema", async () => {
    const tok = await loadTokenizer(DSV3_TOKENIZER_DIR);
    fuzz(vocabFromTokenizer(tok, 129280, [tok.eosId]), 40, 400);
  }, 120_000);

  test("a bounded schema closes within max_tokens, down to its shortest output", () => {
    const v = toyVocab(), validate = ajv.compile(PERSON), g = compileJsonSchema(PERSON, v);
    const shortest = g.start().remaining();
    expect(shortest).toBe(JSON.stringify({ name: "aa", age: 18, kind: "person", address: { city: "" } }).length);
    for (const max of [shortest, shortest + 1, shortest + 5, 60, 100]) {
      for (let seed = 0; seed < 60; seed++) {
        const r = drive(g, seed, max);
        expect(r.ended).toBe("done");
        expect(r.tokens.length).toBeLessThanOrEqual(max);
        expect(validate(JSON.parse(r.text))).toBe(true);
      }
    }
  }, 120_000);

  test("json_object: any JSON object, closed within max_tokens", () => {
    const g = compileJsonObject(toyVocab());
    for (let seed = 0; seed < 200; seed++) {
      const r = drive(g, seed, 12 + (seed % 50));
      const v = JSON.parse(r.text);
      expect(typeof v === "object" && v !== null && !Array.isArray(v)).toBe(true);
    }
  }, 60_000);

  test("keywords that cannot be enforced are refused, not ignored", () => {
    const v = toyVocab();
    for (const s of [{ type: "string", pattern: "(?=a)" }, { type: "string", pattern: "abc", maxLength: 2 }, { type: "array", uniqueItems: true }, { type: "number", multipleOf: 3 }, { type: "integer", exclusiveMinimum: 0 },
      { anyOf: [{ type: "object" }, { type: "object", properties: { a: { type: "string" } } }] }, { type: "integer", minimum: 3, maximum: 2 }])
      expect(() => compileJsonSchema(s, v)).toThrow(GrammarError);
  });
});
