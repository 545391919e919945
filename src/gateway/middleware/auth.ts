// Optional API keys: when any are configured, /v1/* needs `Authorization: Bearer <key>`.
import { timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { ApiError } from "../errors.ts";
import type { GatewayEnv } from "../env.ts";

function sameKey(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export function apiKeyAuth(keys: readonly string[]): MiddlewareHandler<GatewayEnv> {
  const accepted = keys.map((k) => Buffer.from(k));
  return async function apiKeyAuthMiddleware(c, next) {
    const header = c.req.header("authorization") ?? "";
    const match = /^Bearer\s+(.+)$/i.exec(header.trim());
    if (!match) {
      throw new ApiError(401, "Missing API key: pass it as `Authorization: Bearer <key>`.",
        "authentication_error", null, "invalid_api_key");
    }
    const given = Buffer.from(match[1]!.trim());
    if (!accepted.some((k) => sameKey(k, given))) {
      throw new ApiError(401, "Incorrect API key provided.", "authentication_error", null, "invalid_api_key");
    }
    await next();
  };
}
