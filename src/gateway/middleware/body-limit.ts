// Refuses request bodies over `maxBytes` with a 413, by Content-Length or while reading a chunked body.
// Hono's bodyLimit reads a chunked body whole before the route runs, so that read is also where a
// client trickling its body (or never ending it) is caught: past the body deadline it is a 408.
import type { MiddlewareHandler } from "hono";
import { bodyLimit as honoBodyLimit } from "hono/body-limit";
import { ApiError } from "../errors.ts";
import type { GatewayEnv } from "../env.ts";

/** Why a body stopped being awaited: a drain that gave up on it, or the body deadline. */
export function bodyTimeoutError(shutdown: AbortSignal | undefined): ApiError {
  if (shutdown?.aborted) {
    return new ApiError(503, "The server shut down before the request body arrived.", "service_unavailable_error", null, "shutting_down");
  }
  return new ApiError(408, "The request body did not arrive in time.", "timeout_error", null, "body_timeout");
}

export function bodyLimit(maxBytes: number): MiddlewareHandler<GatewayEnv> {
  const limit = honoBodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw new ApiError(413, `Request body too large: the limit is ${maxBytes} bytes.`,
        "invalid_request_error", null, "request_too_large");
    },
  });
  return async function bodyLimitMiddleware(c, next) {
    const deadline = c.get("bodyDeadline");
    let bodyRead = false;
    const work = limit(c, async () => {
      bodyRead = true;
      await next();
    });
    if (!deadline) return work;
    return new Promise<Response | void>((resolve, reject) => {
      const onAbort = () => {
        if (!bodyRead) reject(bodyTimeoutError(c.get("shutdown")));
      };
      if (deadline.aborted) onAbort();
      deadline.addEventListener("abort", onAbort, { once: true });
      work.then(resolve, reject).finally(() => deadline.removeEventListener("abort", onAbort));
    });
  };
}
