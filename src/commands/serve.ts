// `moe serve --model DIR --scaling FILE --host H --port P [--served-model-name NAME]
//  [--speculative mtp --draft-tokens K]`: the
// OpenAI-compatible server. The gateway thread does HTTP and scheduling; the model runs in the
// actors the scaling config places (by default one Bun worker off this thread).
import { basename, resolve } from "node:path";
import { ModelEngine } from "../engine/engine.ts";
import { createBackend } from "./backend.ts";
import { createApp, serveApp } from "../gateway/index.ts";
import { loadTokenizer } from "../tokenizer/index.ts";
import { natsTransportsFor } from "./worker.ts";
import { DEFAULT_MODEL, DEFAULT_SCALING, UsageError, num, parse } from "./args.ts";

export async function serveCommand(argv: string[]): Promise<void> {
  const a = parse(argv, {
    model: { type: "string" }, scaling: { type: "string" }, host: { type: "string" }, port: { type: "string" },
    "served-model-name": { type: "string" }, "api-key": { type: "string" }, "max-model-len": { type: "string" },
    "kv-cache-tokens": { type: "string" }, "max-num-batched-tokens": { type: "string" }, "max-num-seqs": { type: "string" },
    "max-waiting": { type: "string" }, speculative: { type: "string" }, "draft-tokens": { type: "string" },
    nats: { type: "string" }, "nats-creds": { type: "string" },
  });
  const model = resolve(a.model ?? DEFAULT_MODEL);
  const pos = (n: number) => Number.isInteger(n) && n > 0;
  const tokenizer = await loadTokenizer(model);
  if (a.speculative !== undefined && a.speculative !== "mtp") throw new UsageError(`--speculative ${a.speculative}: only "mtp" is supported`);
  const draftTokens = num(a["draft-tokens"], "draft-tokens", 1, (n) => Number.isInteger(n) && n > 0);
  const speculative = a.speculative === "mtp" ? { k: draftTokens } : undefined;
  const scaling = a.scaling ?? DEFAULT_SCALING;
  // Configs that place actors on node:NAME reach them over NATS (--nats or NATS_URL, with the
  // credentials in the URL or --nats-creds FILE); others get none.
  const transports = scaling === "direct" ? [] : await natsTransportsFor(scaling, a.nats, undefined, a["nats-creds"]);
  const backend = await createBackend({
    model, mtp: speculative !== undefined, scaling, transports, kvTokens: num(a["kv-cache-tokens"], "kv-cache-tokens", 16384, pos),
  });
  const engine = new ModelEngine(backend, {
    servedModelName: a["served-model-name"] ?? basename(model),
    maxModelLen: a["max-model-len"] ? num(a["max-model-len"], "max-model-len", 0, pos) : undefined,
    maxBatchTokens: a["max-num-batched-tokens"] ? num(a["max-num-batched-tokens"], "max-num-batched-tokens", 0, pos) : undefined,
    maxRunning: a["max-num-seqs"] ? num(a["max-num-seqs"], "max-num-seqs", 0, pos) : undefined,
    maxWaiting: num(a["max-waiting"], "max-waiting", 256, pos),
    speculative,
    log: (m) => console.error(`[engine] ${m}`),
  });
  const keys = (a["api-key"] ?? process.env.MOE_API_KEY ?? "").split(",").filter(Boolean);
  const app = createApp({ engine, tokenizer, apiKeys: keys });
  const server = serveApp(app, { hostname: a.host ?? "127.0.0.1", port: num(a.port, "port", 8000, (n) => Number.isInteger(n) && n >= 0) });
  console.error(`moe-actors: serving ${engine.info.id} (${model}) on http://${server.hostname}:${server.port}/v1`);
  const stop = async () => {
    server.stop(true);
    await engine.close();
    await Promise.all(transports.map((t) => t.close()));
    process.exit(0);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  await new Promise(() => {}); // serve until stopped
}
