// Counts every response by route and status code (errors included: app.onError has already turned
// them into a response when `next()` returns).
import type { MiddlewareHandler } from "hono";
import type { GatewayEnv } from "../env.ts";
import type { GatewayMetrics } from "../metrics.ts";

const ROUTES = new Set(["/v1/chat/completions", "/v1/completions", "/v1/models", "/tokenize", "/detokenize", "/health", "/health/live", "/metrics"]);

export function httpMetrics(metrics: GatewayMetrics): MiddlewareHandler<GatewayEnv> {
  return async function httpMetricsMiddleware(c, next) {
    await next();
    const route = ROUTES.has(c.req.path) ? c.req.path : c.req.path.startsWith("/v1/models/") ? "/v1/models/:id" : "other";
    metrics.requests.inc({ route, status: String(c.res.status) });
  };
}
