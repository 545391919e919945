// The scaling config's autoscale block: strict, checked against the kind (only stateless kinds
// scale, to zero or not), errors name the field; autoscale.yaml resolves to hosts past every
// location the config names.
import { expect, test } from "bun:test";
import { ScalingError, loadScaling, parseScaling, resolveScaling } from "../../src/config/scaling.ts";

const root = new URL("../..", import.meta.url).pathname;
const shape = { n_routed_experts: 8 };
const AUTO = { min_replicas: 0, max_replicas: 2, target_backlog: 4, scale_down_after_ms: 1000 };
const config = (kind: string, autoscale: unknown) => ({
  actors: { attention: {}, router: {}, expert: { experts: { split: 2 } }, [kind]: { ...(kind === "expert" ? { experts: { split: 2 } } : {}), autoscale } },
});
const error = (f: () => unknown): ScalingError => {
  try {
    f();
  } catch (e) {
    return e as ScalingError;
  }
  throw new Error("expected a ScalingError");
};

test("autoscale.yaml: experts on 0 to 4 worker hosts of their own, their base worker:0", () => {
  const r = resolveScaling(loadScaling(`${root}configs/scaling/autoscale.yaml`), shape);
  const a = r.autoscale.expert!;
  expect([a.min_replicas, a.max_replicas]).toEqual([0, 4]);
  expect(a.base).toBe("worker:0");
  expect(a.hosts).toEqual(["worker:1", "worker:2", "worker:3", "worker:4"]);
  expect(a.keys).toEqual(Object.keys(r.expertActors));
  expect(Object.keys(r.autoscale)).toEqual(["expert"]);
});

test("errors name the field: min above max, unknown keys, missing fields, stateful kinds", () => {
  expect(error(() => parseScaling(config("expert", { ...AUTO, min_replicas: 3 }))).message).toContain("actors.expert.autoscale.min_replicas: must be <= max_replicas");
  expect(error(() => parseScaling(config("expert", { ...AUTO, max: 3 }))).message).toContain('actors.expert.autoscale: unknown key "max"');
  const { target_backlog: _, ...noTarget } = AUTO;
  expect(error(() => parseScaling(config("expert", noTarget))).message).toContain("actors.expert.autoscale.target_backlog");
  const zero = error(() => resolveScaling(parseScaling(config("attention", AUTO)), shape));
  expect(zero.field).toBe("actors.attention.autoscale.min_replicas");
  expect(zero.message).toContain("hold state");
  expect(error(() => resolveScaling(parseScaling(config("attention", { ...AUTO, min_replicas: 1 })), shape)).field).toBe("actors.attention.autoscale");
  // Routers hold no state: they may scale to zero hosts as experts do.
  expect(resolveScaling(parseScaling(config("router", AUTO)), shape).autoscale.router!.min_replicas).toBe(0);
});
