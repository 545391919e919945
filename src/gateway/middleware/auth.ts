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

/** The keys from `--api-key` (or else MOE_API_KEY): comma-separated, spaces around each key trimmed.
 * A flag or variable that is set but names no key is an error, never "auth off": an empty secret in a
 * deployment must not silently open the server. `undefined` for either means "not set". */
export function parseApiKeys(flag: string | undefined, env: string | undefined): string[] {
  const [raw, source] = flag !== undefined ? [flag, "--api-key"] : [env, "MOE_API_KEY"];
  if (raw === undefined) return [];
  const keys = raw.split(",").map((k) => k.trim()).filter((k) => k.length > 0);
  if (keys.length === 0) {
    throw new Error(`${source} is set but holds no key: give at least one key, or unset it to serve without keys`);
  }
  return keys;
}
