// Shared test setup: the real fortune-dsv3 tokenizer (through src/tokenizer once it exists, otherwise
// a local adapter over the same files), an app around a FakeEngine, and SSE parsing.
import { Template } from "@huggingface/jinja";
import { Tokenizer } from "@huggingface/tokenizers";
import { join } from "node:path";
import { createApp, type AppOptions } from "../../src/gateway/app.ts";
import type { TextCodec } from "../../src/gateway/codec.ts";
import { GatewayMetrics } from "../../src/gateway/metrics.ts";
import { FakeEngine, type FakeEngineOptions } from "./fake-engine.ts";

export const MODEL_DIR = join(import.meta.dir, "../../models/fortune-dsv3");
export const MODEL = "fake-dsv3";

async function localCodec(dir: string): Promise<TextCodec> {
  const json = await Bun.file(join(dir, "tokenizer.json")).json();
  const config = await Bun.file(join(dir, "tokenizer_config.json")).json();
  const tok = new Tokenizer(json, config);
  const template = new Template(config.chat_template);
  const special = (t: unknown) => (typeof t === "string" ? t : (t as { content: string }).content);
  return {
    encode: (text, o) => tok.encode(text, { add_special_tokens: o?.addSpecialTokens ?? true }).ids,
    decode: (ids, o) => tok.decode(ids, { skip_special_tokens: o?.skipSpecialTokens ?? false }),
    applyChatTemplate: (messages, o) => template.render({
      messages, add_generation_prompt: o.addGenerationPrompt, tools: o.tools,
      bos_token: special(config.bos_token), eos_token: special(config.eos_token),
    }),
  };
}

let cached: Promise<TextCodec> | null = null;

/** The project's tokenizer when it has landed (src/tokenizer), else the local adapter. */
export function loadCodec(): Promise<TextCodec> {
  cached ??= (async () => {
    const path = "../../src/tokenizer/index.ts";
    try {
      const mod = (await import(path)) as { loadTokenizer?: (dir: string) => Promise<TextCodec> };
      if (mod.loadTokenizer) return await mod.loadTokenizer(MODEL_DIR);
    } catch {
      // not written yet: fall through
    }
    return localCodec(MODEL_DIR);
  })();
  return cached;
}

export const SCRIPT_TEXT = "Hello world! Caf\u00e9 \u{1F600} -- The quick brown fox.";

export interface Harness {
  app: ReturnType<typeof createApp>;
  engine: FakeEngine;
  codec: TextCodec;
  metrics: GatewayMetrics;
  script: number[];
}

export async function harness(engineOpts: Partial<FakeEngineOptions> = {}, appOpts: Partial<AppOptions> = {}): Promise<Harness> {
  const codec = await loadCodec();
  const script = codec.encode(SCRIPT_TEXT, { addSpecialTokens: false });
  const engine = new FakeEngine({ script, ...engineOpts });
  const metrics = new GatewayMetrics();
  const app = createApp({ engine, tokenizer: codec, metrics, ...appOpts });
  return { app, engine, codec, metrics, script };
}

export function post(h: Harness, path: string, body: unknown, headers: Record<string, string> = {}, init: RequestInit = {}) {
  return h.app.request(path, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
    ...init,
  });
}

/** Parses a whole SSE body into its JSON events; `[DONE]` must be last. */
export async function sseEvents(res: Response): Promise<{ events: any[]; done: boolean }> {
  const text = await res.text();
  const datas = text.split("\n\n").filter((b) => b.startsWith("data: ")).map((b) => b.slice(6));
  const done = datas.at(-1) === "[DONE]";
  return { events: datas.filter((d) => d !== "[DONE]").map((d) => JSON.parse(d)), done };
}

export async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not reached in time");
    await Bun.sleep(5);
  }
}
