// A deadline per request. It does not race the handler: it aborts the request's signal, which the
// handlers pass to the engine, so a timed-out request frees its sequence and answers 504 (or ends its
// stream with an error event). The same signal aborts when the client disconnects.
import type { MiddlewareHandler } from "hono";
import type { GatewayEnv } from "../env.ts";

export function requestTimeout(timeoutMs: number | undefined): MiddlewareHandler<GatewayEnv> {
  return async function requestTimeoutMiddleware(c, next) {
    const deadline = timeoutMs && timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : new AbortController().signal;
    c.set("deadline", deadline);
    c.set("signal", AbortSignal.any([c.req.raw.signal, deadline]));
    await next();
  };
}
