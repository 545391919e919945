// `moe serve`: the OpenAI-compatible server. It listens at once (so /health is observable as 503
// while the model loads), tokenizes all but small prompts in a worker pool, and runs the model in the
// actors the scaling config places (by default one Bun worker off this thread). SIGTERM/SIGINT
// drain it: new requests get 503, in-flight streams finish (up to --drain-timeout), then it exits 0.
import { basename, resolve } from "node:path";
import { loadModelConfig } from "../config/model.ts";
import { ModelEngine } from "../engine/engine.ts";
import { createApp, Drain, LoadingEngine, parseApiKeys, serveApp } from "../gateway/index.ts";
import type { ChatOptions } from "../gateway/chat.ts";
import { REASONING_PARSERS } from "../gateway/reasoning.ts";
import { TOOL_CALL_PARSERS } from "../gateway/tools.ts";
import { loadTokenizer } from "../tokenizer/index.ts";
import { TokenizerPool } from "../tokenizer/pool.ts";
import { inlineEncoder, sizedEncoder } from "../tokenizer/prompt.ts";
import { Logger, parseLogFormat, parseLogLevel } from "../log.ts";
import { engineLogHooks, logRuntimeEvents, routeConsole } from "./serve-log.ts";
import { startStatsLog } from "./stats-log.ts";
import { createBackend } from "./backend.ts";
import { kvCacheDtype } from "./kv-cache-flag.ts";
import { natsTransportsFor } from "./worker.ts";
import { DEFAULT_MODEL, DEFAULT_SCALING, UsageError, num, parse } from "./args.ts";

type Transports = Awaited<ReturnType<typeof natsTransportsFor>>;

export const SERVE_USAGE = `usage: moe serve [--model DIR] [--scaling FILE] [--host H] [--port P] [--served-model-name NAME]
  [--api-key K1,K2 (or MOE_API_KEY)] [--metrics-public] [--request-timeout SECONDS] [--drain-timeout SECONDS (30)]
  [--max-model-len N] [--kv-cache-tokens N] [--kv-cache-dtype auto|f32|bf16|fp8 (auto)] [--max-num-batched-tokens N]
  [--max-num-seqs N] [--max-waiting N] [--speculative mtp --draft-tokens K] [--tokenizer-workers N (2)]
  [--nats URL] [--nats-creds FILE] [--nats-wait S (30)] [--scaler local|external (local)]
  [--no-prefix-caching] [--allowed-origins ORIGIN1,ORIGIN2 (CORS; none by default, * for any)]
  [--reasoning-parser deepseek_r1 (none)] [--tool-call-parser deepseek_v3|deepseek_v31 (deepseek_v3)]
  [--log-format text|json (text)] [--log-level debug|info|warn|error (info)] [--disable-log-stats] [-h|--help]
Logs go to stderr: a line per request (a stream's when it ends), preemption and runtime event, and engine stats every 10 s while busy.`;

/** Every flag serve accepts (test/help.test.ts checks SERVE_USAGE names each one). */
export const SERVE_OPTIONS = {
  model: { type: "string" }, scaling: { type: "string" }, host: { type: "string" }, port: { type: "string" },
  "served-model-name": { type: "string" }, "api-key": { type: "string" }, "max-model-len": { type: "string" },
  "kv-cache-tokens": { type: "string" }, "kv-cache-dtype": { type: "string" }, "max-num-batched-tokens": { type: "string" }, "max-num-seqs": { type: "string" },
  "max-waiting": { type: "string" }, speculative: { type: "string" }, "draft-tokens": { type: "string" },
  nats: { type: "string" }, "nats-creds": { type: "string" }, "nats-wait": { type: "string" }, "metrics-public": { type: "boolean" },
  "request-timeout": { type: "string" }, "drain-timeout": { type: "string" }, "tokenizer-workers": { type: "string" },
  "no-prefix-caching": { type: "boolean" }, "allowed-origins": { type: "string" },
  "reasoning-parser": { type: "string" }, "tool-call-parser": { type: "string" },
  "log-format": { type: "string" }, "log-level": { type: "string" }, "disable-log-stats": { type: "boolean" },
  scaler: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

export async function serveCommand(argv: string[]): Promise<void> {
  const a = parse(argv, SERVE_OPTIONS);
  if (a.help) return void console.log(SERVE_USAGE);
  const model = resolve(a.model ?? DEFAULT_MODEL);
  const pos = (n: number) => Number.isInteger(n) && n > 0;
  const seconds = (flag: string, dflt: number) => num(a[flag as "drain-timeout"], flag, dflt, (n) => n >= 0) * 1000;
  if (a.speculative !== undefined && a.speculative !== "mtp") throw new UsageError(`--speculative ${a.speculative}: only "mtp" is supported`);
  const draftTokens = num(a["draft-tokens"], "draft-tokens", 1, (n) => Number.isInteger(n) && n > 0);
  const speculative = a.speculative === "mtp" ? { k: draftTokens } : undefined;
  const scaling = a.scaling ?? DEFAULT_SCALING;
  const kvTokens = num(a["kv-cache-tokens"], "kv-cache-tokens", 16384, pos);
  const kvDtype = kvCacheDtype(a["kv-cache-dtype"]);
  // autoscaled kinds: local starts and stops hosts here; external publishes the demand for KEDA
  const scaler = a.scaler ?? "local";
  if (scaler !== "local" && scaler !== "external") throw new UsageError(`--scaler ${scaler}: must be local or external`);
  const maxModelLen = a["max-model-len"] ? num(a["max-model-len"], "max-model-len", 0, pos) : undefined;
  // vLLM refuses a context the KV cache cannot hold instead of quietly serving a shorter one.
  if (maxModelLen !== undefined && maxModelLen > kvTokens)
    throw new UsageError(`--max-model-len ${maxModelLen} is larger than the ${kvTokens} tokens the KV cache can hold (--kv-cache-tokens): raise --kv-cache-tokens or lower --max-model-len`);
  const drainMs = seconds("drain-timeout", 30);
  const natsWaitS = num(a["nats-wait"], "nats-wait", 30, (n) => n > 0);
  const requestTimeoutMs = seconds("request-timeout", 0) || undefined;
  const port = num(a.port, "port", 8000, (n) => Number.isInteger(n) && n >= 0);
  let apiKeys: string[];
  try {
    apiKeys = parseApiKeys(a["api-key"], process.env.MOE_API_KEY);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  let log: Logger;
  try {
    log = new Logger({ format: parseLogFormat(a["log-format"]), level: parseLogLevel(a["log-level"]) });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const chat = chatOptions(a["reasoning-parser"], a["tool-call-parser"]);
  const servedModelName = a["served-model-name"] ?? basename(model);
  const engineOptions = { // checked before listening: a bad flag never gets as far as a socket
    servedModelName,
    maxModelLen,
    maxBatchTokens: a["max-num-batched-tokens"] ? num(a["max-num-batched-tokens"], "max-num-batched-tokens", 0, pos) : undefined,
    maxRunning: a["max-num-seqs"] ? num(a["max-num-seqs"], "max-num-seqs", 0, pos) : undefined,
    maxWaiting: num(a["max-waiting"], "max-waiting", 256, pos),
    speculative,
    prefixCaching: !(a["no-prefix-caching"] ?? false),
    ...engineLogHooks(log),
  };
  const tokenizerWorkers = num(a["tokenizer-workers"], "tokenizer-workers", 2, pos);

  routeConsole(log); // stray console.error lines keep the log's format (one JSON object per line)
  const tokenizer = await loadTokenizer(model);
  const pool = await TokenizerPool.start(model, tokenizerWorkers);
  const encoder = sizedEncoder(inlineEncoder(tokenizer), pool);
  const config = loadModelConfig(`${model}/config.json`);
  // until the engine exists: the limits it will have, as far as the files tell
  const loading = new LoadingEngine({
    id: servedModelName,
    max_model_len: Math.min(maxModelLen ?? Infinity, config.max_position_embeddings, kvTokens),
    vocab_size: config.vocab_size, eos_token_id: config.eos_ids[0]!, bos_token_id: config.bos_token_id ?? 0,
  });
  const drain = new Drain();
  const app = createApp({
    engine: loading, tokenizer, encoder, servedModelName, apiKeys, metricsPublic: a["metrics-public"] ?? false, requestTimeoutMs, drain,
    allowedOrigins: (a["allowed-origins"] ?? "").split(",").map((o) => o.trim()).filter(Boolean), log, chat,
  });
  const server = serveApp(app, { hostname: a.host ?? "127.0.0.1", port });
  log.info(`listening on http://${server.hostname}:${server.port}/v1; loading ${model}`, { event: "listening", url: `http://${server.hostname}:${server.port}/v1`, model }, { brief: true });

  let transports: Transports = [];
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info(`${signal}: draining (${drain.active} in flight, up to ${drainMs / 1000} s)`, { event: "draining", signal, in_flight: drain.active }, { brief: true });
    const { cut } = await drain.drain(drainMs);
    if (cut > 0) log.warn(`drain timeout: ended ${cut} request(s)`, { event: "drain_timeout", cut }, { brief: true });
    try {
      // let the last answers reach their sockets before the connections are closed
      await Promise.race([server.stop(false), Bun.sleep(2_000)]);
      server.stop(true);
      pool.close();
      await loading.close();
      await Promise.all(transports.map((t) => t.close()));
    } catch (err) {
      log.error(`while stopping: ${(err as Error).message}`, { event: "stop_failed" }, { brief: true });
    }
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));

  try {
    // Configs that place actors on node:NAME reach them over NATS (--nats or NATS_URL, with the
    // credentials in the URL or --nats-creds FILE); others get none.
    transports = scaling === "direct" ? [] : await natsTransportsFor(scaling, a.nats, undefined, a["nats-creds"], natsWaitS);
    const backend = await createBackend({ model, mtp: speculative !== undefined, scaling, transports, kvTokens, kvCacheDtype: kvDtype, scaler });
    logRuntimeEvents(log, backend);
    const engine = new ModelEngine(backend, engineOptions);
    loading.loaded(engine);
    if (!a["disable-log-stats"]) startStatsLog(log, () => engine.stats());
  } catch (err) {
    if (stopping) return new Promise(() => {}); // a signal came during the load: stop() exits
    loading.failed((err as Error).message);
    server.stop(true);
    pool.close();
    await Promise.all(transports.map((t) => t.close().catch(() => {})));
    throw err;
  }
  // A failed warm-up (say, a node:NAME host not up yet) is not fatal: /health stays 503 until a
  // step succeeds, as it would after losing that host later.
  try {
    await loading.warmup();
    log.info(`serving ${servedModelName} (${model}) on http://${server.hostname}:${server.port}/v1`,
      { event: "serving", model_name: servedModelName, model }, { brief: true });
  } catch (err) {
    log.error(`warm-up failed, /health stays 503 until a step succeeds: ${(err as Error).message}`, { event: "warmup_failed" }, { brief: true });
  }
  await new Promise(() => {}); // serve until stopped
}

/** --reasoning-parser and --tool-call-parser, vLLM's names for DeepSeek's formats. */
function chatOptions(reasoning: string | undefined, tools: string | undefined): ChatOptions {
  const pick = <T extends string>(flag: string, v: string | undefined, names: readonly T[]): T | undefined => {
    if (v !== undefined && !names.includes(v as T)) throw new UsageError(`--${flag} ${v}: one of ${names.join(", ")}`);
    return v as T | undefined;
  };
  return {
    reasoningParser: pick("reasoning-parser", reasoning, REASONING_PARSERS) ?? null,
    toolCallParser: pick("tool-call-parser", tools, TOOL_CALL_PARSERS) ?? "deepseek_v3",
  };
}
