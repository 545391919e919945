// Deadlines per request. They do not race the handler: they abort the request's signal, which the
// handlers pass to the engine, so a timed-out request frees its sequence and answers 504 (or ends its
// stream with an error event). The same signal aborts when the client disconnects or a drain cuts
// the request. Reading the body has its own, shorter deadline, so a client that trickles its body
// (or never finishes it) cannot hold a request open.
import type { MiddlewareHandler } from "hono";
import type { GatewayEnv } from "../env.ts";

export const DEFAULT_BODY_TIMEOUT_MS = 30_000;

const never = new AbortController().signal;

export function requestTimeout(timeoutMs: number | undefined, bodyTimeoutMs = DEFAULT_BODY_TIMEOUT_MS): MiddlewareHandler<GatewayEnv> {
  return async function requestTimeoutMiddleware(c, next) {
    const deadline = timeoutMs && timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : never;
    const shutdown = c.get("shutdown") ?? never;
    c.set("deadline", deadline);
    c.set("bodyDeadline", AbortSignal.any([deadline, shutdown, ...(bodyTimeoutMs > 0 ? [AbortSignal.timeout(bodyTimeoutMs)] : [])]));
    c.set("signal", AbortSignal.any([c.req.raw.signal, deadline, shutdown]));
    await next();
  };
}
