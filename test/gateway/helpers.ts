// Shared test setup: the real fortune-dsv3 tokenizer, an app around a FakeEngine, and SSE parsing.
import { join } from "node:path";
import { createApp, type AppOptions } from "../../src/gateway/app.ts";
import type { TextCodec } from "../../src/gateway/codec.ts";
import type { Engine } from "../../src/engine/types.ts";
import { GatewayMetrics } from "../../src/gateway/metrics.ts";
import { loadTokenizer } from "../../src/tokenizer/index.ts";
import { FakeEngine, type FakeEngineOptions } from "./fake-engine.ts";

export const MODEL_DIR = join(import.meta.dir, "../../models/fortune-dsv3");
export const MODEL = "fake-dsv3";

let cached: Promise<TextCodec> | null = null;

/** The project's tokenizer for the bundled model (typed as the gateway's TextCodec: it must fit). */
export function loadCodec(): Promise<TextCodec> {
  cached ??= loadTokenizer(MODEL_DIR);
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

/** The app the tests talk to. Swapping the FakeEngine for the real engine is this call with another
 * `engine`: the gateway only sees the Engine contract. */
export function appAround(engine: Engine, codec: TextCodec, metrics = new GatewayMetrics(), opts: Partial<AppOptions> = {}) {
  return createApp({ engine, tokenizer: codec, metrics, ...opts });
}

export async function harness(engineOpts: Partial<FakeEngineOptions> = {}, appOpts: Partial<AppOptions> = {}): Promise<Harness> {
  const codec = await loadCodec();
  const script = codec.encode(SCRIPT_TEXT, { addSpecialTokens: false });
  const engine = new FakeEngine({ script, ...engineOpts });
  const metrics = new GatewayMetrics();
  const app = appAround(engine, codec, metrics, appOpts);
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
