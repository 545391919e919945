// Prefix caching as an API user sees it, through the official `openai` client on a real socket and
// the real engine (fortune-dsv3): a second request that shares a long system prompt reports
// usage.prompt_tokens_details.cached_tokens (whole, streamed, and when a stop string ends it) and
// its greedy output is the output of an engine without prefix caching.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { DirectBackend } from "../../src/engine/direct.ts";
import { ModelEngine } from "../../src/engine/engine.ts";
import { serveApp } from "../../src/gateway/server.ts";
import { appAround, loadCodec, MODEL_DIR } from "./helpers.ts";

const SYSTEM = "You are a fortune teller. You speak in riddles, you never give a straight answer, and every fortune you tell " +
  "ends with a lucky number between one and ninety-nine. Keep each fortune short: two sentences at most.";
const servers: ReturnType<typeof serveApp>[] = [];
let cached: OpenAI, plain: OpenAI;

async function client(prefixCaching: boolean): Promise<OpenAI> {
  const engine = new ModelEngine(new DirectBackend(MODEL_DIR, { pages: 64, pageSize: 16 }), { servedModelName: "fortune", prefixCaching });
  const server = serveApp(appAround(engine, await loadCodec()), { port: 0 });
  servers.push(server);
  return new OpenAI({ baseURL: `http://127.0.0.1:${server.port}/v1`, apiKey: "none", maxRetries: 0, timeout: 60_000 });
}

beforeAll(async () => {
  [cached, plain] = [await client(true), await client(false)];
});
afterAll(() => servers.forEach((s) => s.stop(true)));

const ask = (question: string) => ({
  model: "fortune", temperature: 0, max_tokens: 24,
  messages: [{ role: "system" as const, content: SYSTEM }, { role: "user" as const, content: question }],
});

describe("prefix caching through the openai client", () => {
  test("chat: the second request reuses the system prompt's pages; same greedy text as without caching", async () => {
    const first = await cached.chat.completions.create(ask("What does tomorrow hold?"));
    expect(first.usage!.prompt_tokens_details?.cached_tokens ?? 0).toBe(0);
    const second = await cached.chat.completions.create(ask("Will I find my keys?"));
    const hit = second.usage!.prompt_tokens_details!.cached_tokens!;
    expect(hit).toBeGreaterThanOrEqual(32);
    expect(hit % 16).toBe(0);
    expect(hit).toBeLessThan(second.usage!.prompt_tokens);
    const want = await plain.chat.completions.create(ask("Will I find my keys?"));
    expect(second.choices[0]!.message.content).toBe(want.choices[0]!.message.content);
    expect(want.usage!.prompt_tokens_details).toBeUndefined();
  }, 120_000);

  test("chat, streamed with include_usage: cached_tokens in the last chunk's usage", async () => {
    const stream = await cached.chat.completions.create({ ...ask("Is it a good day to travel?"), stream: true, stream_options: { include_usage: true } });
    let text = "", usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    expect(usage!.prompt_tokens_details!.cached_tokens).toBeGreaterThanOrEqual(32);
    const want = await plain.chat.completions.create(ask("Is it a good day to travel?"));
    expect(text).toBe(want.choices[0]!.message.content!);
  }, 120_000);

  test("completions ended by a stop string still report what the cache gave", async () => {
    const prompt = `${SYSTEM}\nQ: Should I learn to sing?\nA:`;
    const base = { model: "fortune", prompt, temperature: 0, max_tokens: 16 };
    await cached.completions.create(base);
    const full = await cached.completions.create(base);
    expect(full.usage!.prompt_tokens_details!.cached_tokens).toBeGreaterThanOrEqual(32);
    const text = full.choices[0]!.text;
    const stop = text.trim().split(/\s+/)[1];
    expect(stop).toBeDefined(); // greedy: the same words every time
    const cut = await cached.completions.create({ ...base, stop: [stop] });
    expect(cut.choices[0]!.finish_reason).toBe("stop");
    expect(cut.usage!.prompt_tokens_details!.cached_tokens).toBe(full.usage!.prompt_tokens_details!.cached_tokens);
  }, 120_000);
});
