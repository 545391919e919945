// CORS through hono/cors, only for the origins `serve --allowed-origins` names; without it, no CORS
// headers at all (a browser page on another origin cannot read the API).
import { describe, expect, test } from "bun:test";
import { harness, MODEL, post } from "./helpers.ts";

const chat = { model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 2 };

describe("CORS", () => {
  test("default: no CORS headers, and a preflight is not answered as one", async () => {
    const h = await harness();
    const res = await post(h, "/v1/chat/completions", chat, { origin: "https://app.example" });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    const pre = await h.app.request("/v1/chat/completions", {
      method: "OPTIONS", headers: { origin: "https://app.example", "access-control-request-method": "POST" },
    });
    expect(pre.headers.get("access-control-allow-origin")).toBeNull();
    expect(pre.headers.get("access-control-allow-methods")).toBeNull();
  });

  test("allowed origins get the headers, others do not", async () => {
    const h = await harness({}, { allowedOrigins: ["https://app.example", "http://localhost:3000"] });
    const ok = await post(h, "/v1/chat/completions", chat, { origin: "http://localhost:3000" });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("access-control-allow-origin")).toBe("http://localhost:3000");
    expect(ok.headers.get("vary")).toContain("Origin");
    const other = await post(h, "/v1/chat/completions", chat, { origin: "https://evil.example" });
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
  });

  test("preflight needs no API key; errors carry the headers so a page can read them", async () => {
    const h = await harness({}, { allowedOrigins: ["https://app.example"], apiKeys: ["sk-test"] });
    const pre = await h.app.request("/v1/chat/completions", {
      method: "OPTIONS",
      headers: { origin: "https://app.example", "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type" },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe("https://app.example");
    expect(pre.headers.get("access-control-allow-methods")).toContain("POST");
    expect(pre.headers.get("access-control-allow-headers")).toContain("authorization");
    const unauth = await post(h, "/v1/chat/completions", chat, { origin: "https://app.example" });
    expect(unauth.status).toBe(401);
    expect(unauth.headers.get("access-control-allow-origin")).toBe("https://app.example");
    const authed = await post(h, "/v1/chat/completions", chat, { origin: "https://app.example", authorization: "Bearer sk-test" });
    expect(authed.status).toBe(200);
    expect(authed.headers.get("access-control-expose-headers")).toContain("x-request-id");
  });

  test("'*' allows any origin", async () => {
    const h = await harness({}, { allowedOrigins: ["*"] });
    const res = await h.app.request("/v1/models", { headers: { origin: "https://anything.example" } });
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
  });
});
