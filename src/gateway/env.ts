// Hono context variables set by the gateway's middleware.
import type { Env } from "hono";
import type { RequestTally } from "./middleware/access-log.ts";

export interface GatewayEnv extends Env {
  Variables: {
    requestId: string;
    /** Aborts when the client goes away, the request deadline passes or a drain cuts the request. */
    signal: AbortSignal;
    /** Why `signal` aborted when it was the deadline (so handlers can answer 504, not "client gone"). */
    deadline: AbortSignal;
    /** Aborts when reading the request body has taken too long (408). */
    bodyDeadline: AbortSignal;
    /** Aborts when a drain gives up waiting for this request (503, "shutting down"). */
    shutdown: AbortSignal;
    /** The request's tokens and first-token time, for its access log line. */
    tally: RequestTally;
  };
}
