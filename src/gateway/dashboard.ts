// GET /dashboard: one page (src/gateway/dashboard.html, inline HTML/CSS/JS, no build step) that polls
// GET /v1/cluster every second and draws the actors, hosts, the layer x expert load heat map, replicas
// over time and TTFT/TPOT. The page itself carries no data, so it is served without an API key (a
// browser cannot put a bearer token on a navigation); the data it reads stays behind /v1's key, which
// the page sends when opened as /dashboard#key=KEY (kept in the browser's localStorage).
import { readFileSync } from "node:fs";
import type { Hono } from "hono";
import type { GatewayEnv } from "./env.ts";

const PAGE = readFileSync(new URL("./dashboard.html", import.meta.url), "utf8");

export function dashboardRoutes(app: Hono<GatewayEnv>): void {
  app.get("/dashboard", (c) => {
    c.header("cache-control", "no-store");
    return c.html(PAGE);
  });
}
