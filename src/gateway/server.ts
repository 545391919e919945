// Serving an app on a socket. Bun closes connections idle for 10 s by default, which would cut long
// streams and slow prefills; the gateway's own deadline (requestTimeoutMs) is what bounds requests.
import type { Hono } from "hono";
import type { GatewayEnv } from "./env.ts";

export interface ServeOptions {
  hostname?: string;
  port?: number; // 0 = any free port
}

export function serveApp(app: Hono<GatewayEnv>, opts: ServeOptions = {}): Bun.Server<undefined> {
  return Bun.serve({ fetch: app.fetch, hostname: opts.hostname ?? "127.0.0.1", port: opts.port ?? 8000, idleTimeout: 0 });
}
