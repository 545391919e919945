// Every request gets an id: the client's `x-request-id` when it is sane, a fresh one otherwise.
// It is echoed back in the response header and used in completion ids and engine request ids.
import type { MiddlewareHandler } from "hono";
import type { GatewayEnv } from "../env.ts";

const SANE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestId(): MiddlewareHandler<GatewayEnv> {
  return async function requestIdMiddleware(c, next) {
    const given = c.req.header("x-request-id");
    const id = given && SANE_ID.test(given) ? given : crypto.randomUUID().replaceAll("-", "");
    c.set("requestId", id);
    await next();
    c.res.headers.set("x-request-id", id);
  };
}
