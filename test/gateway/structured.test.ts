// Structured output through the official `openai` client against the real engine on the bundled
// fortune-dsv3 model at temperature 1.0: json_schema outputs validate (ajv) over many seeds, and
// guided_regex, guided_choice, guided_json and json_object hold, whatever the weights say.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import Ajv from "ajv";
import OpenAI from "openai";
import { DirectBackend } from "../../src/engine/direct.ts";
import { ModelEngine } from "../../src/engine/engine.ts";
import { serveApp } from "../../src/gateway/server.ts";
import { appAround, loadCodec, MODEL_DIR } from "./helpers.ts";

const ajv = new Ajv({ strict: false });
let engine: ModelEngine;
let server: ReturnType<typeof serveApp>;
let client: OpenAI;
const MODEL = "fortune";
const messages = [{ role: "user" as const, content: "Describe a person as JSON." }];

const PERSON = {
  type: "object",
  properties: {
    name: { type: "string", minLength: 1, maxLength: 12 },
    code: { type: "string", pattern: "^[A-Z]{3}-\\d{2}$" },
    age: { type: "integer", minimum: 0, maximum: 120 },
    height: { type: "number", minimum: 0.5, maximum: 2.5 },
    role: { enum: ["admin", "user", "guest"] },
    kind: { const: "person" },
    tags: { type: "array", items: { type: "string", maxLength: 6 }, maxItems: 3 },
    address: { type: "object", properties: { city: { type: "string", maxLength: 10 } }, required: ["city"], additionalProperties: false },
    retired: { type: "boolean" },
  },
  required: ["name", "age", "role", "kind", "address", "code"],
  additionalProperties: false,
};

beforeAll(async () => {
  engine = new ModelEngine(new DirectBackend(MODEL_DIR, { pages: 512, pageSize: 16 }), { servedModelName: MODEL, maxRunning: 16 });
  server = serveApp(appAround(engine, await loadCodec()), { port: 0 });
  client = new OpenAI({ baseURL: `http://127.0.0.1:${server.port}/v1`, apiKey: "none", maxRetries: 0, timeout: 60_000 });
});

afterAll(async () => {
  server.stop(true);
  await engine.close();
});

describe("structured output, real model, temperature 1.0", () => {
  test("json_schema: 24 seeds, every output validates and closes within max_tokens", async () => {
    const validate = ajv.compile(PERSON);
    const runs = Array.from({ length: 24 }, (_, seed) => client.chat.completions.create({
      model: MODEL, messages, temperature: 1.0, seed, max_tokens: 90,
      response_format: { type: "json_schema", json_schema: { name: "person", schema: PERSON, strict: true } },
    }));
    for (const r of await Promise.all(runs)) {
      const text = r.choices[0]!.message.content!;
      expect(r.choices[0]!.finish_reason).toBe("stop");
      if (!validate(JSON.parse(text))) throw new Error(`${text}: ${ajv.errorsText(validate.errors)}`);
      expect(r.usage!.completion_tokens).toBeLessThanOrEqual(90);
    }
  }, 240_000);

  test("streamed json_schema with a tight max_tokens still closes", async () => {
    const schema = { type: "object", properties: { a: { type: "array", items: { type: "integer", minimum: 0, maximum: 9 }, maxItems: 50 } }, required: ["a"], additionalProperties: false };
    const validate = ajv.compile(schema);
    for (let seed = 0; seed < 4; seed++) {
      const stream = await client.chat.completions.create({
        model: MODEL, messages, temperature: 1.0, seed, max_tokens: 12, stream: true,
        response_format: { type: "json_schema", json_schema: { name: "a", schema } },
      });
      let text = "";
      for await (const ch of stream) text += ch.choices[0]?.delta?.content ?? "";
      expect(validate(JSON.parse(text))).toBe(true);
    }
  }, 120_000);

  test("guided_regex on /v1/completions", async () => {
    for (let seed = 0; seed < 6; seed++) {
      const r = await client.completions.create({
        model: MODEL, prompt: "Call me at", temperature: 1.0, seed, max_tokens: 16,
        // @ts-expect-error vLLM's extension of the request
        guided_regex: "\\(\\d{3}\\) \\d{3}-\\d{4}",
      });
      expect(r.choices[0]!.text).toMatch(/^\(\d{3}\) \d{3}-\d{4}$/);
    }
  }, 120_000);

  test("guided_choice and guided_json on chat", async () => {
    const choices = ["fortune", "misfortune", "neither"];
    for (let seed = 0; seed < 6; seed++) {
      const r = await client.chat.completions.create({
        model: MODEL, messages, temperature: 1.0, seed, max_tokens: 8,
        // @ts-expect-error vLLM's extension of the request
        guided_choice: choices,
      });
      expect(choices).toContain(r.choices[0]!.message.content!);
      const j = await client.chat.completions.create({
        model: MODEL, messages, temperature: 1.0, seed, max_tokens: 20,
        // @ts-expect-error vLLM's extension of the request
        guided_json: { type: "object", properties: { ok: { type: "boolean" } }, required: ["ok"] },
      });
      expect(typeof JSON.parse(j.choices[0]!.message.content!).ok).toBe("boolean");
    }
  }, 120_000);

  test("json_object: a JSON object, even under a short max_tokens", async () => {
    for (let seed = 0; seed < 6; seed++) {
      const r = await client.chat.completions.create({
        model: MODEL, messages, temperature: 1.0, seed, max_tokens: 10 + 5 * seed, response_format: { type: "json_object" },
      });
      const v = JSON.parse(r.choices[0]!.message.content!);
      expect(typeof v === "object" && v !== null && !Array.isArray(v)).toBe(true);
    }
  }, 120_000);

  test("a schema that cannot be enforced, or two constraints at once, is a 400 naming the field", async () => {
    const refused = async (body: object) => {
      try {
        await client.chat.completions.create({ model: MODEL, messages, ...body } as never);
      } catch (e) {
        return { status: (e as { status?: number }).status, param: (e as { param?: string }).param };
      }
      return null;
    };
    expect(await refused({ response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "number", multipleOf: 3 } } } }))
      .toEqual({ status: 400, param: "response_format" });
    expect(await refused({ response_format: { type: "json_object" }, guided_regex: "a" })).toEqual({ status: 400, param: "guided_regex" });
  });
});
