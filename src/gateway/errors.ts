// The gateway's one error type. Everything that goes wrong in a request ends up as an ApiError and is
// turned into an OpenAI-shaped body in exactly one place (`toErrorResponse`, used by app.onError and by
// SSE streams that fail after their headers were sent).
import { ZodError } from "zod";
import { EngineError } from "../engine/types.ts";

export type ErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "not_found_error"
  | "rate_limit_error"
  | "timeout_error"
  | "service_unavailable_error"
  | "server_error";

export interface ErrorBody {
  error: { message: string; type: ErrorType; param: string | null; code: string | null };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: ErrorType = status >= 500 ? "server_error" : "invalid_request_error",
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }

  static badRequest(message: string, param: string | null = null, code: string | null = null): ApiError {
    return new ApiError(400, message, "invalid_request_error", param, code);
  }

  /** A fault of ours worth logging (not an overload, a timeout or a client that left). */
  get isServerFault(): boolean {
    return this.status >= 500 && this.status !== 503 && this.status !== 504;
  }

  body(): ErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** `messages[0].content` from zod's ["messages", 0, "content"]. */
export function formatParam(path: readonly PropertyKey[]): string | null {
  let out = "";
  for (const p of path) out += typeof p === "number" ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || null;
}

/** One issue in words a client can act on ("must be <= 2"); zod's own words otherwise. */
function describeIssue(issue: ZodError["issues"][number]): string {
  const i = issue as { code: string; origin?: string; minimum?: unknown; maximum?: unknown; inclusive?: boolean; message: string };
  const bound = (op: string) => `${op}${i.inclusive ? "=" : ""} ${String(i.code === "too_big" ? i.maximum : i.minimum)}`;
  if ((i.code === "too_big" || i.code === "too_small") && (i.origin === "number" || i.origin === "int" || i.origin === "bigint"))
    return `must be ${bound(i.code === "too_big" ? "<" : ">")}`;
  if (i.code === "too_small" && i.origin === "array") return `must have at least ${String(i.minimum)} item(s)`;
  if (i.code === "too_big" && i.origin === "array") return `must have at most ${String(i.maximum)} item(s)`;
  return i.message;
}

/** Every bad field in one answer (zod reports them all), so a client fixes its request in one go;
 * `param` names the first. */
function fromZod(err: ZodError): ApiError {
  const issues = err.issues;
  const param = issues[0] ? formatParam(issues[0].path) : null;
  const message = issues.map((issue) => {
    const at = formatParam(issue.path);
    return at ? `${at}: ${describeIssue(issue)}` : describeIssue(issue);
  }).join("; ") || "invalid request";
  const code = issues[0]?.code === "custom" ? "unsupported_parameter" : "invalid_value";
  return ApiError.badRequest(message, param, code);
}

function fromEngine(err: EngineError): ApiError {
  switch (err.code) {
    case "queue_full": {
      const retry = String(Math.max(1, Math.ceil(err.retryAfterSeconds ?? 1)));
      return new ApiError(429, err.message, "rate_limit_error", null, "queue_full", { "Retry-After": retry });
    }
    case "prompt_too_long":
      return new ApiError(400, err.message, "invalid_request_error", "prompt", "context_length_exceeded");
    case "invalid_request":
      return new ApiError(400, err.message, "invalid_request_error", null, "invalid_request");
    case "unavailable": {
      const retry: Record<string, string> = err.retryAfterSeconds ? { "Retry-After": String(Math.ceil(err.retryAfterSeconds)) } : {};
      return new ApiError(503, err.message, "service_unavailable_error", null, "unavailable", retry);
    }
    default: // the engine's own words may name files and lines: they go to the log, not the client
      return new ApiError(500, "Internal server error.", "server_error", null, "internal");
  }
}

/** Any thrown value -> ApiError. Unknown errors become a bare 500: their message may carry file paths,
 * source lines or library internals, which belong in the server log (with the request id), not in
 * the answer to an API client. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof ZodError) return fromZod(err);
  if (err instanceof EngineError) return fromEngine(err);
  const status = (err as { status?: unknown } | null)?.status;
  if (typeof status === "number" && status >= 400 && status < 500) {
    return new ApiError(status, (err as Error).message || "bad request");
  }
  return new ApiError(500, "Internal server error.", "server_error", null, "internal");
}

export function toErrorResponse(err: unknown): Response {
  const api = toApiError(err);
  return new Response(JSON.stringify(api.body()), {
    status: api.status,
    headers: { "content-type": "application/json", ...api.headers },
  });
}
