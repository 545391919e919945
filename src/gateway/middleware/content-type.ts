// Generation endpoints take JSON only. A browser may POST text/plain or form bodies to any origin
// without a CORS preflight, so accepting any Content-Type would let every web page drive a key-less
// server on localhost; application/json (optionally with parameters such as charset) needs a preflight.
import type { MiddlewareHandler } from "hono";
import { ApiError } from "../errors.ts";
import type { GatewayEnv } from "../env.ts";

const JSON_TYPE = /^application\/json\s*(;.*)?$/i;

export function jsonOnly(): MiddlewareHandler<GatewayEnv> {
  return async function jsonOnlyMiddleware(c, next) {
    const type = c.req.header("content-type") ?? "";
    if (!JSON_TYPE.test(type.trim())) {
      throw new ApiError(415, `Unsupported Content-Type ${JSON.stringify(type)}: send the body as application/json.`,
        "invalid_request_error", null, "unsupported_media_type");
    }
    await next();
  };
}
