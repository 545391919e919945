// A client that goes away cancels its engine sequences, and /metrics shows nothing left running.
import { describe, expect, test } from "bun:test";
import { harness, MODEL, post, until } from "./helpers.ts";

const long = { model: MODEL, prompt: "x", max_tokens: 200, ignore_eos: true, temperature: 0 };

async function gauge(h: Awaited<ReturnType<typeof harness>>, name: string): Promise<number> {
  const text = await (await h.app.request("/metrics")).text();
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text); // whatever its labels (model_name)
  return Number(m?.[1]);
}

describe("client disconnect", () => {
  test("cancelling a stream's body aborts the engine request and frees its cache", async () => {
    const h = await harness({ stepMs: 5 });
    const res = await post(h, "/v1/completions", { ...long, stream: true, n: 2 });
    const reader = res.body!.getReader();
    for (let i = 0; i < 4; i++) await reader.read();
    expect(await gauge(h, "moe_num_requests_running")).toBe(2);
    expect(await gauge(h, "moe_kv_cache_blocks_used")).toBeGreaterThan(0);
    await reader.cancel();
    await until(() => h.engine.aborted.length === 2);
    for (const req of h.engine.requests) expect(req.signal!.aborted).toBe(true);
    expect(await gauge(h, "moe_num_requests_running")).toBe(0);
    expect(await gauge(h, "moe_kv_cache_blocks_used")).toBe(0);
  });

  test("an aborted request signal (client gone before the answer) aborts a non-streaming request", async () => {
    const h = await harness({ stepMs: 5 });
    const ctrl = new AbortController();
    const pending = post(h, "/v1/chat/completions", { ...long, prompt: undefined, messages: [{ role: "user", content: "hi" }] }, {}, { signal: ctrl.signal });
    await until(() => h.engine.stats().running === 1);
    ctrl.abort();
    const res = await pending;
    expect(res.status).toBe(499);
    await until(() => h.engine.aborted.length === 1);
    expect(h.engine.stats().running).toBe(0);
  });

  test("an aborted request signal mid-stream aborts the engine request", async () => {
    const h = await harness({ stepMs: 5 });
    const ctrl = new AbortController();
    const res = await post(h, "/v1/chat/completions", { ...long, prompt: undefined, messages: [{ role: "user", content: "hi" }], stream: true }, {}, { signal: ctrl.signal });
    const reader = res.body!.getReader();
    await reader.read();
    ctrl.abort();
    await until(() => h.engine.aborted.length === 1);
    expect(h.engine.stats().running).toBe(0);
  });

  test("requests that finish normally are not counted as aborted", async () => {
    const h = await harness();
    await (await post(h, "/v1/completions", { ...long, max_tokens: 3, stream: true })).text();
    await (await post(h, "/v1/completions", { ...long, max_tokens: 3 })).text();
    await until(() => h.engine.finished.length === 2);
    expect(h.engine.aborted).toHaveLength(0);
    expect(h.engine.stats().running).toBe(0);
  });
});
