// Refuses request bodies over `maxBytes` with a 413, by Content-Length or while reading a chunked body.
import type { MiddlewareHandler } from "hono";
import { bodyLimit as honoBodyLimit } from "hono/body-limit";
import { ApiError } from "../errors.ts";
import type { GatewayEnv } from "../env.ts";

export function bodyLimit(maxBytes: number): MiddlewareHandler<GatewayEnv> {
  return honoBodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw new ApiError(413, `Request body too large: the limit is ${maxBytes} bytes.`,
        "invalid_request_error", null, "request_too_large");
    },
  });
}
