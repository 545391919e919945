// The HTTP face of the engine. createApp wires middleware and routes around any `Engine` (the real
// scheduler or a test double) and any `TextCodec` (the model's tokenizer); nothing else is global.
import { Hono } from "hono";
import { cors } from "hono/cors";
import type { Engine, EngineStats } from "../engine/types.ts";
import { Logger } from "../log.ts";
import { inlineEncoder, type PromptEncoder } from "../tokenizer/prompt.ts";
import { type ChatOptions, chatCompletions } from "./chat.ts";
import type { TextCodec } from "./codec.ts";
import { ClusterWatch, clusterRoutes } from "./cluster.ts";
import { completions } from "./completions.ts";
import { dashboardRoutes } from "./dashboard.ts";
import { Drain } from "./drain.ts";
import type { GatewayEnv } from "./env.ts";
import { ApiError, toApiError, toErrorResponse } from "./errors.ts";
import { healthRoutes } from "./health.ts";
import { tokenizeRoutes } from "./tokenize.ts";
import { GatewayMetrics } from "./metrics.ts";
import { apiKeyAuth } from "./middleware/auth.ts";
import { bodyLimit } from "./middleware/body-limit.ts";
import { jsonOnly } from "./middleware/content-type.ts";
import { accessLog } from "./middleware/access-log.ts";
import { httpMetrics } from "./middleware/http-metrics.ts";
import { requestId } from "./middleware/request-id.ts";
import { requestTimeout } from "./middleware/timeout.ts";
import type { GatewayDeps } from "./request.ts";

export interface AppOptions {
  engine: Engine;
  tokenizer: TextCodec;
  /** Where prompts are tokenized; a server passes a TokenizerPool (default: inline on this thread). */
  encoder?: PromptEncoder;
  /** The model's id in the API; defaults to engine.info.id. */
  servedModelName?: string;
  /** When non-empty, /v1/* (and /metrics unless metricsPublic) requires `Authorization: Bearer <key>`. */
  apiKeys?: readonly string[];
  /** Leave /metrics open even when API keys are set (a scraper on a private network). */
  metricsPublic?: boolean;
  /** Request bodies above this are refused with 413 (default 4 MiB). */
  maxBodyBytes?: number;
  /** Deadline per /v1 request, body included; past it the engine request is aborted and the answer is
   * 504 (408 while the body is still arriving). Default: none. */
  requestTimeoutMs?: number;
  /** Deadline for receiving a request body (default 30 s; the request deadline when that is shorter). */
  bodyTimeoutMs?: number;
  /** Graceful shutdown; pass one to drive it (serve does on SIGTERM). */
  drain?: Drain;
  /** Pass one to share metrics between apps or read them in tests. */
  metrics?: GatewayMetrics;
  /** One line per request, and the details of server faults (default: server faults only, on stderr). */
  log?: Logger;
  /** Browser origins allowed to call the API (CORS); `*` for any. Default: none (no CORS headers). */
  allowedOrigins?: readonly string[];
  /** How chat outputs are read: reasoning and tool-call parsers. */
  chat?: ChatOptions;
}

export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;

export function createApp(opts: AppOptions): Hono<GatewayEnv> {
  const { engine } = opts;
  const metrics = opts.metrics ?? new GatewayMetrics();
  const drain = opts.drain ?? new Drain();
  const servedModelName = opts.servedModelName ?? engine.info.id;
  // without a logger of its own, an app says only what console.error said before logs existed
  const log = opts.log ?? new Logger({ level: "error", write: (line) => console.error(line.trimEnd()) });
  const deps: GatewayDeps = {
    engine, codec: opts.tokenizer, encoder: opts.encoder ?? inlineEncoder(opts.tokenizer), metrics, servedModelName,
    get info() { return engine.info; }, // read per request: a loading engine's info changes once
  };
  const created = Math.floor(Date.now() / 1000);
  const app = new Hono<GatewayEnv>();

  // First, so that preflights need no API key and errors (401, 413, ...) carry the CORS headers too.
  if (opts.allowedOrigins?.length) {
    const any = opts.allowedOrigins.includes("*");
    app.use("*", cors({
      origin: any ? "*" : [...opts.allowedOrigins],
      allowMethods: ["GET", "POST", "OPTIONS"],
      exposeHeaders: ["x-request-id", "retry-after"],
      maxAge: 600,
    }));
  }
  app.use("*", requestId());
  app.use("*", accessLog(log));
  app.use("*", httpMetrics(metrics));
  if (opts.apiKeys && opts.apiKeys.length > 0) {
    app.use("/v1/*", apiKeyAuth(opts.apiKeys));
    if (!opts.metricsPublic) app.use("/metrics", apiKeyAuth(opts.apiKeys));
  }
  app.use("/v1/*", drain.middleware());
  app.use("/v1/*", requestTimeout(opts.requestTimeoutMs, opts.bodyTimeoutMs));
  app.use("/v1/*", bodyLimit(opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES));
  app.post("/v1/chat/completions", jsonOnly(), (c) => chatCompletions(c, deps, opts.chat));
  app.post("/v1/completions", jsonOnly(), (c) => completions(c, deps));
  // vLLM's tokenizer endpoints (outside /v1, as there), behind the same key, deadline and body limit
  for (const path of ["/tokenize", "/detokenize"]) {
    if (opts.apiKeys && opts.apiKeys.length > 0) app.use(path, apiKeyAuth(opts.apiKeys));
    app.use(path, requestTimeout(opts.requestTimeoutMs, opts.bodyTimeoutMs), bodyLimit(opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES));
  }
  tokenizeRoutes(app, deps);

  const modelCard = () => ({
    id: servedModelName,
    object: "model",
    created,
    owned_by: "moe-actors",
    root: servedModelName,
    parent: null,
    max_model_len: engine.info.max_model_len,
  });
  app.get("/v1/models", (c) => c.json({ object: "list", data: [modelCard()] }));
  app.get("/v1/models/:id", (c) => {
    if (c.req.param("id") !== servedModelName) {
      throw new ApiError(404, `The model \`${c.req.param("id")}\` does not exist.`, "not_found_error", "model", "model_not_found");
    }
    return c.json(modelCard());
  });

  healthRoutes(app, engine, drain);
  clusterRoutes(app, new ClusterWatch(engine, metrics)); // under /v1: behind the key, like the API
  dashboardRoutes(app);
  app.get("/metrics", (c) => {
    c.header("content-type", "text/plain; version=0.0.4; charset=utf-8");
    return c.body(metrics.render(engineStats(engine), servedModelName));
  });

  app.notFound((c) => toErrorResponse(
    new ApiError(404, `No route for ${c.req.method} ${c.req.path}.`, "not_found_error", null, "not_found")));
  app.onError((err, c) => {
    const api = toApiError(err);
    // the details (messages naming files, stacks) stay in the server log, under the request id
    if (api.isServerFault) {
      log.error("request failed", { event: "request_error", request_id: c.get("requestId"), status: api.status, error: errorText(err) });
    }
    return toErrorResponse(api);
  });
  return app;
}

function errorText(err: unknown): string {
  return err instanceof ApiError ? err.message : err instanceof Error ? err.stack ?? err.message : String(err);
}

/** A scrape must not fail because the engine is unwell: its gauges are then simply left out. */
function engineStats(engine: Engine): EngineStats | null {
  try {
    return engine.stats();
  } catch {
    return null;
  }
}
