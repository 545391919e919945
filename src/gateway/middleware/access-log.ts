// One log line per request: method, path, status, request id, tokens in and out, time to first
// token and total time. A stream is logged when its body ends (finished, failed or cut off by the
// client), not when its headers go out; its status is the 200 that was sent, and `finish_reason`
// says "abort" when the client went away. Probes and scrapes (/health, /metrics) are logged at debug
// level, their 503 "not ready" included, so a kubelet or Prometheus polling every few seconds does
// not drown the requests; a 500 there is an error like any other.
import type { MiddlewareHandler } from "hono";
import type { FinishReason } from "../../engine/types.ts";
import type { LogLevel, Logger } from "../../log.ts";
import type { GatewayEnv } from "../env.ts";
import { toApiError } from "../errors.ts";
import { type Ending, onEnd } from "../stream-end.ts";

/** What one request's sequences add up to, filled in by their SequenceTimers. */
export class RequestTally {
  promptTokens: number | null = null; // null: no sequence was admitted
  completionTokens = 0;
  firstTokenMs: number | null = null;
  readonly finishReasons: FinishReason[] = [];

  constructor(readonly startMs: number) {}

  prompt(tokens: number): void {
    this.promptTokens = (this.promptTokens ?? 0) + tokens;
  }

  token(nowMs: number): void {
    this.completionTokens += 1;
    this.firstTokenMs ??= nowMs;
  }

  finished(reason: FinishReason): void {
    this.finishReasons.push(reason);
  }
}


const PROBES = new Set(["/health", "/health/live", "/metrics"]);

export function accessLog(log: Logger): MiddlewareHandler<GatewayEnv> {
  return async function accessLogMiddleware(c, next) {
    const tally = new RequestTally(performance.now());
    c.set("tally", tally);
    const client = clientAddress(c.env, c.req.raw); // now: a stream's socket may be gone at its end
    await next();
    const status = c.res.status;
    const stream = c.res.headers.get("content-type")?.startsWith("text/event-stream") ?? false;
    const line = (ending: Ending) => {
      const now = performance.now();
      // a 500 is our fault; 503/504 (loading, draining, no live host, deadline) and 429 are load
      const level: LogLevel = PROBES.has(c.req.path) && status !== 500 ? "debug"
        : status === 500 ? "error" : status >= 500 || status === 429 ? "warn" : "info";
      const reasons = ending === "cancel" ? ["abort"] : ending === "error" ? ["error"] : [...new Set(tally.finishReasons)];
      log.log(level, "request", {
        event: "request",
        method: c.req.method,
        path: c.req.path,
        status,
        request_id: c.get("requestId"),
        client,
        prompt_tokens: tally.promptTokens,
        completion_tokens: tally.promptTokens === null ? null : tally.completionTokens,
        ttft_ms: tally.firstTokenMs === null ? null : round(tally.firstTokenMs - tally.startMs),
        total_ms: round(now - tally.startMs),
        finish_reason: reasons.length ? reasons.join(",") : null,
        stream: stream || undefined,
        error: c.error ? toApiError(c.error).message : undefined,
      });
    };
    const body = c.res.body;
    if (body && stream) {
      c.res = new Response(onEnd(body, line), c.res);
    } else {
      line("end");
    }
  };
}

/** The peer's address when served by Bun.serve (which hands app.fetch its server as env); not in
 * app.request() tests. */
function clientAddress(env: unknown, req: Request): string | undefined {
  try {
    return (env as { requestIP?: (r: Request) => { address: string } | null } | undefined)?.requestIP?.(req)?.address;
  } catch {
    return undefined;
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

