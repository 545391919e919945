// The HTTP face of the engine. createApp wires middleware and routes around any `Engine` (the real
// scheduler or a test double) and any `TextCodec` (the model's tokenizer); nothing else is global.
import { Hono } from "hono";
import { EngineError, type Engine, type EngineStats } from "../engine/types.ts";
import { chatCompletions } from "./chat.ts";
import type { TextCodec } from "./codec.ts";
import { completions } from "./completions.ts";
import type { GatewayEnv } from "./env.ts";
import { ApiError, toApiError, toErrorResponse } from "./errors.ts";
import { GatewayMetrics } from "./metrics.ts";
import { apiKeyAuth } from "./middleware/auth.ts";
import { bodyLimit } from "./middleware/body-limit.ts";
import { httpMetrics } from "./middleware/http-metrics.ts";
import { requestId } from "./middleware/request-id.ts";
import { requestTimeout } from "./middleware/timeout.ts";
import type { GatewayDeps } from "./request.ts";

export interface AppOptions {
  engine: Engine;
  tokenizer: TextCodec;
  /** The model's id in the API; defaults to engine.info.id. */
  servedModelName?: string;
  /** When non-empty, /v1/* requires `Authorization: Bearer <one of these>`. */
  apiKeys?: readonly string[];
  /** Request bodies above this are refused with 413 (default 4 MiB). */
  maxBodyBytes?: number;
  /** Deadline per /v1 request; past it the engine request is aborted and the answer is 504 (default: none). */
  requestTimeoutMs?: number;
  /** Pass one to share metrics between apps or read them in tests. */
  metrics?: GatewayMetrics;
}

export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;

export function createApp(opts: AppOptions): Hono<GatewayEnv> {
  const { engine } = opts;
  const metrics = opts.metrics ?? new GatewayMetrics();
  const servedModelName = opts.servedModelName ?? engine.info.id;
  const deps: GatewayDeps = { engine, codec: opts.tokenizer, metrics, info: engine.info, servedModelName };
  const created = Math.floor(Date.now() / 1000);
  const app = new Hono<GatewayEnv>();

  app.use("*", requestId());
  app.use("*", httpMetrics(metrics));
  if (opts.apiKeys && opts.apiKeys.length > 0) app.use("/v1/*", apiKeyAuth(opts.apiKeys));
  app.use("/v1/*", bodyLimit(opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES));
  app.use("/v1/*", requestTimeout(opts.requestTimeoutMs));

  app.post("/v1/chat/completions", (c) => chatCompletions(c, deps));
  app.post("/v1/completions", (c) => completions(c, deps));

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

  app.get("/health", (c) => c.json({ status: "ok" }));
  app.get("/metrics", (c) => {
    c.header("content-type", "text/plain; version=0.0.4; charset=utf-8");
    return c.body(metrics.render(engineStats(engine)));
  });

  app.notFound((c) => toErrorResponse(
    new ApiError(404, `No route for ${c.req.method} ${c.req.path}.`, "not_found_error", null, "not_found")));
  app.onError((err) => {
    const api = toApiError(err);
    if (api.isServerFault) {
      // our own errors say enough in one line; anything else deserves its stack
      console.error("[gateway]", err instanceof ApiError || err instanceof EngineError ? `${api.status} ${api.message}` : err);
    }
    return toErrorResponse(api);
  });
  return app;
}

/** A scrape must not fail because the engine is unwell: its gauges are then simply left out. */
function engineStats(engine: Engine): EngineStats | null {
  try {
    return engine.stats();
  } catch {
    return null;
  }
}
