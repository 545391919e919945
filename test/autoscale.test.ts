// The load step against configs/scaling/autoscale.yaml on tiny-dsv3: none -> 16 concurrent
// streams -> none. The expert hosts go up while the streams run and back to min_replicas (0) after,
// every stream's greedy output is the reference's golden one, whichever hosts the experts were on,
// and no request fails. /metrics shows moe_actor_replicas and moe_actor_backlog.
import { afterAll, expect, test } from "bun:test";
import { startActorBackend } from "../src/commands/backend.ts";
import { ModelEngine } from "../src/engine/engine.ts";
import { GatewayMetrics } from "../src/gateway/metrics.ts";
import type { RuntimeEvent } from "../src/runtime/index.ts";
import { collect, greedy } from "./golden/suite.ts";
import { Golden } from "./helpers/golden.ts";

const root = new URL("..", import.meta.url).pathname;
const model = `${root}test/fixtures/tiny-dsv3`;
const g = new Golden(model);
const prompts = g.json.batch.prompts as number[][];
const want = g.json.batch.completions as number[][];
const N = want[0]!.length;
const STREAMS = 16;

const backend = await startActorBackend({ model, scaling: `${root}configs/scaling/autoscale.yaml`, pages: 256, pageSize: 16 });
const engine = new ModelEngine(backend);
afterAll(() => backend.close());
const system = backend.system;
const scaled = (pred: (e: Extract<RuntimeEvent, { type: "scaled" }>) => boolean) => (e: RuntimeEvent) =>
  e.type === "scaled" && e.kind === "expert" && pred(e);

test("a load step scales the expert hosts up and back to min_replicas, golden outputs throughout", async () => {
  const spec = backend.scaling.autoscale.expert!;
  expect(spec.min_replicas).toBe(0);
  expect(system.scaler!.replicas("expert")).toBe(0);
  const up = system.events.next(scaled((e) => e.replicas > spec.min_replicas), 120_000);
  let hostsUp = false;
  up.then(() => (hostsUp = true), () => {});
  let failures = 0, done = 0, wrong = 0, onHosts = 0;
  const metrics: string[] = [];
  // 16 clients, each streaming golden prompts back to back until the hosts are up and it has run
  // one whole stream after that (while the experts run on the new hosts).
  const client = async (c: number) => {
    for (let after = 0; after < 1; ) {
      const started = hostsUp;
      const p = c % prompts.length;
      try {
        const out = await collect(engine, `load-${c}-${done}`, prompts[p]!, greedy(N));
        if (JSON.stringify(out) !== JSON.stringify(want[p])) wrong++;
      } catch {
        failures++;
      }
      done++;
      if (started) (after++, onHosts++);
      if (c === 0 && hostsUp) metrics.push(new GatewayMetrics().render(engine.stats(), "tiny"));
    }
  };
  await Promise.all(Array.from({ length: STREAMS }, (_, c) => client(c)));
  const peak = Math.max(...system.events.recent().flatMap((e) => (e.type === "scaled" ? [e.replicas] : [])));
  expect(peak).toBeGreaterThan(spec.min_replicas);
  expect(peak).toBeLessThanOrEqual(spec.max_replicas);
  expect(onHosts).toBe(STREAMS);
  // The experts ran on the scaled hosts, not only at their base (worker:0).
  const moved = system.events.recent().filter((e) => e.type === "relocated" && e.reason === "scaled" && spec.hosts.includes(e.location));
  expect(moved.length).toBeGreaterThan(0);
  expect(metrics.some((m) => /moe_actor_replicas\{model_name="tiny",kind="expert"\} [1-4]/.test(m))).toBe(true);
  expect(metrics.join("")).toMatch(/moe_actor_backlog\{model_name="tiny",kind="expert"\} \d+/);

  // The load ends: back at min_replicas within the config's scale-down delay (bounded at 60 s).
  await system.events.next(scaled((e) => e.replicas === spec.min_replicas), 60_000);
  expect(system.scaler!.replicas("expert")).toBe(spec.min_replicas);
  for (const h of spec.hosts) expect(system.locations()).not.toContain(h);
  // The first request after idling is a cold start at the base, with the same tokens.
  expect(await collect(engine, "after", prompts[0]!, greedy(N))).toEqual(want[0]!);
  expect(wrong).toBe(0);
  expect(failures).toBe(0);
  expect(new GatewayMetrics().render(engine.stats(), "tiny")).toContain('moe_actor_replicas{model_name="tiny",kind="expert"} 0');
}, 180_000);
