// Graceful shutdown. Once draining, new /v1 requests get a 503 with Retry-After (a load balancer
// sends them elsewhere) and /health reports "draining"; requests already in flight, streams
// included, run on until they end or the drain timeout passes. Then `shutdown` aborts: what is still
// running ends with a final error event (or a 503) and, for streams, `data: [DONE]`.
import type { MiddlewareHandler } from "hono";
import { ApiError } from "./errors.ts";
import type { GatewayEnv } from "./env.ts";
import { onEnd } from "./stream-end.ts";

/** After the timeout, how long the cut requests get to write their last event. */
const FLUSH_MS = 5_000;

export class Drain {
  private readonly stop = new AbortController();
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];
  private started = false;

  /** Aborts every request still in flight when the drain gives up waiting. */
  get shutdown(): AbortSignal {
    return this.stop.signal;
  }

  get draining(): boolean {
    return this.started;
  }

  /** Requests (streams until their last byte) not finished yet. */
  get active(): number {
    return this.inFlight;
  }

  /** Refuses new requests while draining; counts the others until their response body ends. */
  middleware(): MiddlewareHandler<GatewayEnv> {
    const drainMiddleware: MiddlewareHandler<GatewayEnv> = async (c, next) => {
      if (this.started) {
        throw new ApiError(503, "The server is shutting down; retry on another replica.", "service_unavailable_error",
          null, "shutting_down", { "Retry-After": "5" });
      }
      c.set("shutdown", this.stop.signal);
      const release = this.enter();
      try {
        await next();
      } catch (err) {
        release();
        throw err;
      }
      const body = c.res.body;
      if (body && c.res.headers.get("content-type")?.startsWith("text/event-stream")) {
        c.res = new Response(onEnd(body, () => release()), c.res);
      } else {
        release();
      }
    };
    return drainMiddleware;
  }

  /** Starts draining (idempotent) and resolves once nothing is in flight; after `timeoutMs` what is
   * left is cut. Resolves with how many requests were cut. */
  async drain(timeoutMs: number): Promise<{ cut: number }> {
    this.started = true;
    if (await this.idleWithin(timeoutMs)) return { cut: 0 };
    const cut = this.inFlight;
    this.stop.abort();
    await this.idleWithin(FLUSH_MS);
    return { cut };
  }

  private enter(): () => void {
    this.inFlight += 1;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.inFlight -= 1;
      if (this.inFlight === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    };
  }

  private idleWithin(ms: number): Promise<boolean> {
    if (this.inFlight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.idleWaiters = this.idleWaiters.filter((w) => w !== wake);
        resolve(false);
      }, ms);
      this.idleWaiters.push(wake);
    });
  }
}
