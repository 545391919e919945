// GET /v1/cluster and GET /dashboard through app.request: what runs where before and after a request
// on a real engine over the tiny fixture, the key /v1 asks for, and the page's marked elements.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createBackend } from "../../src/commands/backend.ts";
import { ModelEngine } from "../../src/engine/engine.ts";
import { createApp } from "../../src/gateway/index.ts";
import { Histogram } from "../../src/gateway/prometheus.ts";
import { loadTokenizer } from "../../src/tokenizer/index.ts";
import { harness } from "./helpers.ts";

const root = new URL("../..", import.meta.url).pathname;
const MODEL = `${root}test/fixtures/tiny-dsv3`;
const auth = { authorization: "Bearer k1" };

describe("GET /v1/cluster on a real engine", () => {
  let engine: ModelEngine, app: ReturnType<typeof createApp>;
  beforeAll(async () => {
    const backend = await createBackend({ model: MODEL, scaling: `${root}configs/scaling/inprocess.yaml`, kvTokens: 1024 });
    engine = new ModelEngine(backend, { servedModelName: "tiny" });
    app = createApp({ engine, tokenizer: await loadTokenizer(MODEL), apiKeys: ["k1"] });
  }, 120_000);
  afterAll(async () => engine?.close());
  const cluster = async () => (await app.request("/v1/cluster", { headers: auth })).json() as Promise<any>;

  test("needs the API key, like the rest of /v1", async () => {
    expect((await app.request("/v1/cluster")).status).toBe(401);
  });

  test("actors go from passivated to active, the expert load and TTFT/TPOT fill in, replicas are kept over time", async () => {
    const before = await cluster();
    expect(before.object).toBe("cluster");
    expect(before.hosts.map((h: any) => h.location)).toEqual(["inprocess"]);
    const att = (c: any) => c.actors.find((a: any) => a.id === "attention/0");
    expect(att(before)).toEqual({ id: "attention/0", kind: "attention", key: "0", location: "inprocess", state: "passivated", replicas: 0 });
    expect(before.actors.map((a: any) => a.kind).sort()).toEqual(["attention", "expert", "router"]);
    expect(before.latency.ttft_seconds).toBeNull();
    expect(before.autoscale).toBeNull(); // no kind autoscales in inprocess.yaml

    const res = await app.request("/v1/completions", {
      method: "POST", headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ model: "tiny", prompt: "Hello there", max_tokens: 6, temperature: 0, ignore_eos: true }),
    });
    expect(res.status).toBe(200);
    await res.json();

    let after = await cluster();
    // the routers' load is refreshed at most once a second, the history sampled at most twice a second
    const deadline = Date.now() + 30_000;
    const settled = (c: any) => Object.values(c.expert_load).flat().some((n) => n !== 0) && c.replicas_history.length >= 2;
    while (!settled(after) && Date.now() < deadline) {
      await Bun.sleep(200);
      after = await cluster();
    }
    expect(att(after)).toMatchObject({ state: "active", replicas: 1, location: "inprocess" });
    expect(after.hosts[0].actors).toContain("attention/0#0");
    const load = after.expert_load as Record<string, number[]>;
    expect(Object.keys(load).length).toBeGreaterThan(0);
    expect(Object.values(load).flat().reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    expect(after.latency.ttft_seconds.count).toBe(1);
    expect(after.latency.tpot_seconds.count).toBe(1);
    expect(after.replicas).toMatchObject({ attention: 1, router: 1, expert: 1 });
    expect(after.replicas_history.length).toBeGreaterThanOrEqual(2);
    expect(after.replicas_history[0].replicas.attention).toBe(0);
    expect(after.replicas_history.at(-1).replicas.attention).toBe(1);
  }, 60_000);
});

describe("GET /v1/cluster with an autoscaled kind", () => {
  test("shows the hosts serving it and its backlog, now and over time (moe_actor_replicas/_backlog)", async () => {
    const backend = await createBackend({ model: MODEL, scaling: `${root}configs/scaling/autoscale.yaml`, kvTokens: 1024, scaler: "external" });
    const engine = new ModelEngine(backend, { servedModelName: "tiny" });
    try {
      const app = createApp({ engine, tokenizer: await loadTokenizer(MODEL) });
      const body = (await (await app.request("/v1/cluster")).json()) as any;
      expect(body.autoscale).toEqual({ hosts: { expert: 0 }, backlog: { expert: 0 } });
      expect(body.replicas_history.at(-1).hosts).toEqual({ expert: 0 });
    } finally {
      await engine.close();
    }
  }, 60_000);
});

describe("GET /dashboard", () => {
  test("is one page with the actor table and the heat map, served without the key (its data is behind it)", async () => {
    const h = await harness({}, { apiKeys: ["k1"] });
    const res = await h.app.request("/dashboard");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    const html = await res.text();
    expect(html).toContain('data-testid="actors"');
    expect(html).toContain('data-testid="expert-heatmap"');
    expect(html).toContain('fetch("/v1/cluster"');
  });

  test("an engine without actors still shows its expert load", async () => {
    const h = await harness();
    const body = (await (await h.app.request("/v1/cluster")).json()) as any;
    expect(body.hosts).toEqual([]);
    expect(body.actors).toEqual([]);
    expect(body.expert_load).toEqual(h.engine.stats().expert_load);
  });
});

test("Histogram.summary estimates quantiles within the buckets", () => {
  const hist = new Histogram("x", "x", [0.1, 0.2, 0.4]);
  expect(hist.summary()).toBeNull();
  for (const v of [0.05, 0.15, 0.15, 0.3]) hist.observe(v);
  const s = hist.summary([0.5, 1])!;
  expect(s.count).toBe(4);
  expect(s.mean).toBeCloseTo(0.1625, 10);
  expect(s.quantiles.p50).toBeCloseTo(0.15, 10); // rank 2 of 4: half-way through the (0.1, 0.2] bucket
  expect(s.quantiles.p100).toBeCloseTo(0.4, 10);
});
