// Hono context variables set by the gateway's middleware.
import type { Env } from "hono";

export interface GatewayEnv extends Env {
  Variables: {
    requestId: string;
    /** Aborts when the client goes away or the request deadline passes. */
    signal: AbortSignal;
    /** Why `signal` aborted when it was the deadline (so handlers can answer 504, not "client gone"). */
    deadline: AbortSignal;
  };
}
