// Issue 13, items 7 and 8: /health tells a load balancer the truth (loading, a kind without a live
// host, draining), /health/live tells an orchestrator the process runs, and a drain lets in-flight
// streams finish, refuses new work with 503 + Retry-After, and cuts what outlives the drain timeout
// with a final error event and [DONE].
import { describe, expect, test } from "bun:test";
import { Drain } from "../../src/gateway/drain.ts";
import { LoadingEngine } from "../../src/gateway/loading-engine.ts";
import { appAround, harness, loadCodec, MODEL, post, until } from "./helpers.ts";
import { FakeEngine } from "./fake-engine.ts";

const comp = { model: MODEL, prompt: "hi", max_tokens: 2 };
const decoder = new TextDecoder();

/** Reads SSE frames off a live response body as they come. */
function frames(res: Response) {
  const reader = res.body!.getReader();
  let buf = "";
  const all: string[] = [];
  return {
    all,
    async next(): Promise<string | null> {
      for (;;) {
        const cut = buf.indexOf("\n\n");
        if (cut >= 0) {
          const f = buf.slice(0, cut).replace(/^data: /, "");
          buf = buf.slice(cut + 2);
          all.push(f);
          return f;
        }
        const r = await reader.read();
        if (r.done) return null;
        buf += decoder.decode(r.value, { stream: true });
      }
    },
    async rest(): Promise<string[]> {
      while ((await this.next()) !== null);
      return all;
    },
  };
}

describe("/health and /health/live (item 8)", () => {
  test("503 with the engine's reason while a kind has no live host; live stays 200", async () => {
    const h = await harness();
    expect((await h.app.request("/health")).status).toBe(200);
    h.engine.healthState = { ready: false, reason: "actor kind expert has no live host" };
    const res = await h.app.request("/health");
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ status: "unavailable", reason: "actor kind expert has no live host" });
    expect((await h.app.request("/health/live")).status).toBe(200);
    h.engine.healthState = { ready: true };
    expect((await h.app.request("/health")).status).toBe(200);
  });

  test("while the model loads: /health 503, requests 503 with Retry-After; then both serve", async () => {
    const codec = await loadCodec();
    const fake = new FakeEngine({ script: codec.encode("Hello there", { addSpecialTokens: false }) });
    const loading = new LoadingEngine({ ...fake.info });
    const app = appAround(loading, codec);
    const health = await app.request("/health");
    expect(health.status).toBe(503);
    expect(((await health.json()) as any).reason).toContain("loading");
    const refused = await app.request("/v1/completions", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(comp) });
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("5");
    expect(((await refused.json()) as any).error.type).toBe("service_unavailable_error");
    expect((await app.request("/health/live")).status).toBe(200);
    fake.healthState = { ready: false, reason: "warming up" }; // loaded, first step not run yet
    loading.loaded(fake);
    expect((await app.request("/health")).status).toBe(503);
    fake.healthState = { ready: true };
    expect((await app.request("/health")).status).toBe(200);
    const ok = await app.request("/v1/completions", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(comp) });
    expect(ok.status).toBe(200);
  });
});

describe("draining (item 7)", () => {
  test("in-flight streams finish; new requests get 503 + Retry-After; /health says draining", async () => {
    const drain = new Drain();
    const h = await harness({ stepMs: 5 }, { drain });
    const res = await post(h, "/v1/completions", { ...comp, max_tokens: 20, ignore_eos: true, stream: true });
    const stream = frames(res);
    await stream.next(); // streaming has begun
    const whole = post(h, "/v1/completions", { ...comp, max_tokens: 20, ignore_eos: true });
    await until(() => h.engine.stats().running === 2);
    const drained = drain.drain(60_000);

    const health = await h.app.request("/health");
    expect(health.status).toBe(503);
    expect(((await health.json()) as any).status).toBe("draining");
    const refused = await post(h, "/v1/chat/completions", { model: MODEL, messages: [{ role: "user", content: "hi" }] });
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).not.toBeNull();
    expect(((await refused.json()) as any).error).toMatchObject({ type: "service_unavailable_error", code: "shutting_down" });

    const all = await stream.rest();
    expect(all.at(-1)).toBe("[DONE]");
    const last = JSON.parse(all.at(-2)!);
    expect(last.choices[0].finish_reason).toBe("length");
    expect((await whole).status).toBe(200);
    expect(await drained).toEqual({ cut: 0 });
    expect(h.engine.aborted).toHaveLength(0);
  });

  test("past the drain timeout, a stream ends with an error event and [DONE], its sequence aborted", async () => {
    const drain = new Drain();
    const h = await harness({ stepMs: 20 }, { drain });
    const res = await post(h, "/v1/completions", { ...comp, max_tokens: 250, ignore_eos: true, stream: true });
    const stream = frames(res);
    await stream.next();
    // and a request whose body never ends: the drain does not wait for it forever either
    const stalledBody = new ReadableStream<Uint8Array>({ start(c) { c.enqueue(new TextEncoder().encode("{")); } });
    const stalled = h.app.request("/v1/completions",
      { method: "POST", headers: { "content-type": "application/json" }, body: stalledBody, duplex: "half" } as RequestInit);
    await until(() => drain.active === 2);
    expect(await drain.drain(20)).toEqual({ cut: 2 });
    const cutBody = await stalled;
    expect(cutBody.status).toBe(503);
    expect(((await cutBody.json()) as any).error.code).toBe("shutting_down");
    const all = await stream.rest();
    expect(all.at(-1)).toBe("[DONE]");
    expect(JSON.parse(all.at(-2)!).error).toMatchObject({ type: "service_unavailable_error", code: "shutting_down" });
    await until(() => h.engine.aborted.length === 1);
    expect(drain.active).toBe(0);
  }, 20_000);

  test("with nothing in flight a drain ends at once", async () => {
    const drain = new Drain();
    await harness({}, { drain });
    expect(await drain.drain(60_000)).toEqual({ cut: 0 });
  });
});

describe("a sequence the engine could not place (no live host)", () => {
  test("is a 503 whole, and a service_unavailable error event in a stream", async () => {
    const h = await harness({ failAfterTokens: 0, errorCode: "unavailable", error: "no live host for actor kind expert" });
    const res = await post(h, "/v1/completions", { ...comp, max_tokens: 10 });
    expect(res.status).toBe(503);
    expect(((await res.json()) as any).error).toMatchObject({ type: "service_unavailable_error", code: "unavailable" });
    const late = await harness({ failAfterTokens: 2, errorCode: "unavailable" });
    const s = frames(await post(late, "/v1/completions", { ...comp, max_tokens: 10, stream: true }));
    const all = await s.rest();
    expect(all.at(-1)).toBe("[DONE]");
    expect(JSON.parse(all.at(-2)!).error.type).toBe("service_unavailable_error");
  });
});
