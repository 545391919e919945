// The real engine behind the gateway: golden greedy continuations from token-id prompts, many
// concurrent streams, a disconnecting client that leaves nothing behind, the openai client.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { ModelEngine } from "../src/engine/engine.ts";
import { createBackend } from "../src/commands/backend.ts";
import { createApp, serveApp } from "../src/gateway/index.ts";
import { loadTokenizer } from "../src/tokenizer/index.ts";
import { Golden } from "./helpers/golden.ts";

const root = new URL("..", import.meta.url).pathname;
const SCALING = process.env.MOE_TEST_SCALING ?? `${root}configs/scaling/single-worker.yaml`;

async function makeServer(model: string, name: string) {
  const backend = await createBackend({ model, scaling: SCALING, kvTokens: 8192 });
  const engine = new ModelEngine(backend, { servedModelName: name });
  const app = createApp({ engine, tokenizer: await loadTokenizer(model) });
  const server = serveApp(app, { port: 0 });
  return { engine, app, server, url: `http://127.0.0.1:${server.port}` };
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`)); // labels: model_name
  return line ? Number(line.split(" ")[1]) : NaN;
}

describe("serving the tiny fixture", () => {
  let s: Awaited<ReturnType<typeof makeServer>>;
  const g = new Golden(`${root}test/fixtures/tiny-dsv3`);
  beforeAll(async () => (s = await makeServer(`${root}test/fixtures/tiny-dsv3`, "tiny")));
  afterAll(async () => {
    s.server.stop(true);
    await s.engine.close();
  });

  test("/health is 503 until the model has run a step (item 8); /health/live is 200 throughout", async () => {
    const before = await fetch(`${s.url}/health`);
    expect(before.status).toBe(503);
    expect(((await before.json()) as any).status).toBe("unavailable");
    expect((await fetch(`${s.url}/health/live`)).status).toBe(200);
    await s.engine.warmup();
    expect((await fetch(`${s.url}/health`)).status).toBe(200);
  });

  test("greedy completions from token-id prompts equal the golden continuations", async () => {
    const want = g.json.batch.completions as number[][];
    const prompts = [g.ids("batch.prompt0"), g.ids("batch.prompt1")];
    const res = await Promise.all(prompts.map(async (p, i) => {
      const r = await fetch(`${s.url}/v1/completions`, {
        method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "tiny", prompt: p, max_tokens: want[i].length, temperature: 0, ignore_eos: true, logprobs: 0, return_tokens_as_token_ids: true }),
      });
      return r.json();
    }));
    res.forEach((body: any, i) => {
      const ids = body.choices[0].logprobs.tokens.map((t: string) => Number(t.replace("token_id:", "")));
      expect(ids).toEqual(want[i]);
      expect(body.usage.completion_tokens).toBe(want[i].length);
    });
  });
});

describe("serving the bundled model", () => {
  let s: Awaited<ReturnType<typeof makeServer>>;
  beforeAll(async () => (s = await makeServer(`${root}models/fortune-dsv3`, "fortune-dsv3")));
  afterAll(async () => {
    s.server.stop(true);
    await s.engine.close();
  });

  test("the openai client: chat, streaming chat, completion", async () => {
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "none" });
    const chat = await client.chat.completions.create({ model: "fortune-dsv3", messages: [{ role: "user", content: "Tell me a fortune" }], max_tokens: 24, temperature: 0 });
    expect(typeof chat.choices[0].message.content).toBe("string");
    expect(["stop", "length"]).toContain(chat.choices[0].finish_reason);
    let text = "";
    const stream = await client.chat.completions.create({ model: "fortune-dsv3", messages: [{ role: "user", content: "Tell me a fortune" }], max_tokens: 24, temperature: 0, stream: true });
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    expect(text).toBe(chat.choices[0].message.content ?? "");
    const comp = await client.completions.create({ model: "fortune-dsv3", prompt: "The quick brown fox", max_tokens: 8, temperature: 0.7, seed: 3 });
    const again = await client.completions.create({ model: "fortune-dsv3", prompt: "The quick brown fox", max_tokens: 8, temperature: 0.7, seed: 3 });
    expect(comp.choices[0].text).toBe(again.choices[0].text);
  });

  test("32 concurrent streams complete, each equal to its run alone", async () => {
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "none" });
    const prompts = Array.from({ length: 32 }, (_, i) => `Fortune number ${i}:`);
    const run = async (p: string) => {
      let t = "";
      const st = await client.completions.create({ model: "fortune-dsv3", prompt: p, max_tokens: 16, temperature: 0, stream: true });
      for await (const c of st) t += c.choices[0]?.text ?? "";
      return t;
    };
    const together = await Promise.all(prompts.map(run));
    for (const i of [0, 13, 31]) expect(await run(prompts[i])).toBe(together[i]);
    expect(await metric(s.url, "moe_num_requests_running")).toBe(0);
  });

  test("/health answers while a long prefill runs in the actors", async () => {
    let done = false;
    const long = fetch(`${s.url}/v1/completions`, {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "fortune-dsv3", prompt: Array.from({ length: 1000 }, (_, i) => 3 + (i % 4000)), max_tokens: 16, ignore_eos: true }),
    }).then((r) => r.json() as Promise<{ usage: { completion_tokens: number } }>).finally(() => (done = true));
    // Wait for the engine to hold the request (not a fixed sleep): then /health is asked mid-prefill.
    const deadline = Date.now() + 60_000;
    while (SCALING !== "direct" && !done && (await metric(s.url, "moe_num_requests_running")) + (await metric(s.url, "moe_num_requests_waiting")) < 1) {
      if (Date.now() > deadline) throw new Error("the long request never reached the engine");
      await Bun.sleep(1);
    }
    const health = await fetch(`${s.url}/health`);
    expect(health.status).toBe(200);
    if (SCALING !== "direct") expect(done).toBe(false); // off the gateway's thread, the answer did not wait
    expect((await long).usage.completion_tokens).toBe(16);
  });

  test("a client that disconnects leaves no sequence running and no cache held", async () => {
    const ac = new AbortController();
    const res = await fetch(`${s.url}/v1/completions`, {
      method: "POST", headers: { "content-type": "application/json" }, signal: ac.signal,
      body: JSON.stringify({ model: "fortune-dsv3", prompt: "Once upon a time", max_tokens: 900, ignore_eos: true, stream: true }),
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    await reader.read();
    await reader.read();
    expect(await metric(s.url, "moe_num_requests_running")).toBe(1);
    ac.abort();
    for (let i = 0; i < 200 && (await metric(s.url, "moe_kv_cache_blocks_used")) !== 0; i++) await Bun.sleep(20);
    expect(await metric(s.url, "moe_num_requests_running")).toBe(0);
    expect(await metric(s.url, "moe_kv_cache_blocks_used")).toBe(0);
  });
});
