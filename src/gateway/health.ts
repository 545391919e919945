// Readiness and liveness. /health answers 200 only when the engine can serve (actors activated, a
// first step run, every actor kind on a live host) and the server is not draining: a load balancer
// sends traffic by it. /health/live answers 200 while the process runs: an orchestrator restarts by it.
import type { Hono } from "hono";
import type { Engine, EngineHealth } from "../engine/types.ts";
import type { Drain } from "./drain.ts";
import type { GatewayEnv } from "./env.ts";

export function healthRoutes(app: Hono<GatewayEnv>, engine: Engine, drain: Drain): void {
  app.get("/health/live", (c) => c.json({ status: "alive" }));
  app.get("/health", (c) => {
    if (drain.draining) return c.json({ status: "draining", in_flight: drain.active }, 503);
    const h = engineHealth(engine);
    return h.ready ? c.json({ status: "ok", in_flight: drain.active })
      : c.json({ status: "unavailable", reason: h.reason ?? "not ready" }, 503);
  });
}

/** An engine that cannot even say how it is, is not ready. */
function engineHealth(engine: Engine): EngineHealth {
  try {
    return engine.health();
  } catch (err) {
    return { ready: false, reason: `health check failed: ${(err as Error).message}` };
  }
}
