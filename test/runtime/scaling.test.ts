// Scaling configs: strict parsing with errors that name the field, resolution against a model,
// and the shipped configs on models with 16 and 64 routed experts.
import { describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import {
  type ScalingConfig, checkScaling, loadScaling, parseExpertIds, parseScaling, resolveScaling,
} from "../../src/config/scaling.ts";
import { ActorSystem } from "../../src/runtime/index.ts";
import { KINDS } from "./helpers.ts";

const DIR = new URL("../../configs/scaling/", import.meta.url).pathname;
const SHIPPED = ["single-worker", "split-workers", "experts-4-redundant", "inprocess"];

const base = (): any => ({ actors: { attention: { replicas: 1 }, router: {}, expert: { experts: { split: 2 } } } });
function parseError(mut: (c: any) => void): string {
  const c = base();
  mut(c);
  try {
    parseScaling(c, "x.yaml");
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error("expected a parse error");
}
function resolveError(mut: (c: any) => void, E = 16, kinds?: string[]): string {
  const c = base();
  mut(c);
  try {
    resolveScaling(parseScaling(c, "x.yaml"), { n_routed_experts: E }, { kinds });
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error("expected a resolve error");
}

describe("scaling config parsing", () => {
  test.each([
    ["an unknown top-level key", (c: any) => (c.foo = 1), '(top level): unknown key "foo"'],
    ["an unknown key in a kind", (c: any) => (c.actors.router.replica = 2), 'actors.router: unknown key "replica"'],
    ["zero replicas", (c: any) => (c.actors.attention.replicas = 0), "actors.attention.replicas: must be >= 1"],
    ["fractional replicas", (c: any) => (c.actors.attention.replicas = 1.5), "actors.attention.replicas: must be an integer"],
    ["a bad location", (c: any) => (c.actors.expert.placement = "gpu:1"), 'actors.expert.placement: must be "inprocess", "worker:N", "process:N" or "node:NAME"'],
    ["a bad location in a list", (c: any) => (c.actors.expert.placement = ["worker:1", "wrk:2"]), "actors.expert.placement[1]: must be"],
    ["a bad fallback location", (c: any) => (c.fallback = ["worker:0", "gpu:1"]), "fallback[1]: must be"],
    ["a fallback that is not a list", (c: any) => (c.actors.expert.fallback = "worker:0"), "actors.expert.fallback:"],
    ["a zero ask timeout", (c: any) => (c.ask_timeout_ms = 0), "ask_timeout_ms: must be >= 1"],
    ["a bad device", (c: any) => (c.device = "tpu"), 'device: must be "cpu", "cuda:N" or "hip:N"'],
    ["a negative idle timeout", (c: any) => (c.idle_timeout_ms = -5), "idle_timeout_ms: must be >= 1"],
    ["split and table", (c: any) => (c.actors.expert.experts.table = [{ actor: 0, experts: "0-3" }]), "actors.expert.experts: give exactly one of split or table"],
    ["bad expert ids", (c: any) => (c.actors.expert.experts = { table: [{ actor: 0, experts: "0-x" }] }), 'actors.expert.experts.table[0].experts: must be expert ids like "0-7,12"'],
    ["replicate_hot with a table", (c: any) => (c.actors.expert.experts = { table: [{ actor: 0, experts: "0-15" }], replicate_hot: 1 }), "actors.expert.experts.replicate_hot: only with split"],
    ["a bad kind name", (c: any) => (c.actors["Big-Kind"] = {}), "actors.Big-Kind: actor kind names are lower_snake_case"],
    ["no actors", (c: any) => delete c.actors, "actors: required"],
  ])("%s is an error naming the field", (_name, mut, expected) => {
    expect(parseError(mut)).toStartWith(`scaling config x.yaml: ${expected}`);
  });

  test("defaults fill in, and the parsed config is frozen", () => {
    const c = parseScaling(base());
    expect([c.placement, c.device, c.idle_timeout_ms, c.max_batch_tokens, c.max_running_seqs]).toEqual(["worker:0", "cpu", null, 512, 64]);
    expect(Object.isFrozen(c)).toBe(true);
  });

  test("expert id lists", () => {
    expect(parseExpertIds("0-3, 7,5-5")).toEqual([0, 1, 2, 3, 5, 7]);
    expect(parseExpertIds([3, 1, 3])).toEqual([1, 3]);
  });

  test("an unreadable file is an error naming the file", () => {
    expect(() => loadScaling(`${DIR}/nope.yaml`)).toThrow(/scaling config .*nope\.yaml: cannot read/);
  });
});

describe("scaling config resolution", () => {
  test.each([
    ["an unknown kind", (c: any) => (c.actors.mtp2 = {}), 'actors.mtp2: unknown actor kind "mtp2" (known: attention, router, expert, mtp)'],
    ["an expert id out of range", (c: any) => (c.actors.expert.experts = { table: [{ actor: 0, experts: "0-7" }, { actor: 1, experts: "8-15,20" }] }), "actors.expert.experts.table[1].experts: expert 20 is out of range (the model has 16 routed experts: 0-15)"],
    ["experts nobody holds", (c: any) => (c.actors.expert.experts = { table: [{ actor: 0, experts: "0-7" }, { actor: 1, experts: [8, 9, 10, 11, 12] }] }), "actors.expert.experts: experts 13, 14, 15 held by no expert actor"],
    ["more expert actors than experts", (c: any) => (c.actors.expert.experts = { split: 20 }), "actors.expert.experts.split: 20 expert actors for 16 routed experts: each needs at least one"],
    ["a copy with one expert actor", (c: any) => (c.actors.expert.experts = { split: 1, replicate_hot: 1 }), "actors.expert.experts.replicate_hot: a redundant copy needs a second expert actor (split >= 2)"],
    ["no router", (c: any) => delete c.actors.router, "actors.router: missing"],
    ["no expert placement", (c: any) => delete c.actors.expert.experts, "actors.expert.experts: missing: say how the 16 routed experts are held"],
    ["experts on a router", (c: any) => (c.actors.router.experts = { split: 1 }), "actors.router.experts: only expert actors hold routed experts"],
    ["replicas on experts", (c: any) => (c.actors.expert.replicas = 2), "actors.expert.replicas: the expert actors are counted by experts.split or experts.table"],
  ])("%s is an error naming the field", (_name, mut, expected) => {
    expect(resolveError(mut)).toStartWith(`scaling config x.yaml: ${expected}`);
  });

  test("kinds are checked against the registry's kinds when given", () => {
    const c = parseScaling(base());
    expect(() => checkScaling(c, ["attention", "router", "expert"])).not.toThrow();
    expect(() => checkScaling(c, ["attention", "expert"])).toThrow('actors.router: unknown actor kind "router" (known: attention, expert)');
  });

  test("uneven split, explicit table with copies, and a frozen result", () => {
    const c = base();
    c.actors.expert.experts = { split: 3 };
    const r = resolveScaling(parseScaling(c), { n_routed_experts: 10 });
    expect(r.expertActors).toEqual({ "0": [0, 1, 2], "1": [3, 4, 5], "2": [6, 7, 8, 9] });
    expect(Object.isFrozen(r.expertTable[0])).toBe(true);
    c.actors.expert.experts = { table: [{ actor: 1, experts: "0-9" }, { actor: 0, experts: "2,3" }] };
    const t = resolveScaling(parseScaling(c), { n_routed_experts: 10 });
    expect(t.expertTable[2]).toEqual(["1", "0"]); // the first holder is the primary
    expect(t.expertActors).toEqual({ "1": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], "0": [2, 3] });
  });

  test("replicate_hot copies the most loaded experts when a load profile is given", () => {
    const c = base();
    c.actors.expert.experts = { split: 4, replicate_hot: 2 };
    const load: Record<number, number[]> = { 3: new Array(16).fill(1), 4: new Array(16).fill(1) };
    load[3]![13] = 50;
    load[4]![6] = 40;
    const r = resolveScaling(parseScaling(c), { n_routed_experts: 16, moe_layers: [3, 4] }, { load });
    expect(r.hotExperts).toEqual([13, 6]);
    expect(r.expertTable[13]).toEqual(["3", "0"]);
    expect(r.expertTable[6]).toEqual(["1", "2"]);
    expect(() => resolveScaling(parseScaling(c), { n_routed_experts: 16 }, { load: [1, 2] })).toThrow("load: has 2 experts, the model 16");
  });

  test("ask_timeout_ms is resolved, with a default: every ask has a deadline", () => {
    expect(resolveScaling(parseScaling(base()), { n_routed_experts: 16 }).askTimeoutMs).toBe(30_000);
    const c = base();
    c.ask_timeout_ms = 2500;
    expect(resolveScaling(parseScaling(c), { n_routed_experts: 16 }).askTimeoutMs).toBe(2500);
  });

  test("fallback: by default the gateway's own location; per kind, top level, or none", () => {
    const c = base();
    c.placement = "node:gateway";
    c.actors.expert.placement = ["node:a", "node:b"];
    const fb = (r: ReturnType<typeof resolveScaling>, kind: string) => r.placement.filter((p) => p.kind === kind).map((p) => p.fallback);
    let r = resolveScaling(parseScaling(c), { n_routed_experts: 16 });
    expect(fb(r, "expert")).toEqual([["node:gateway"], ["node:gateway"]]);
    expect(fb(r, "attention")).toEqual([[]]); // already at the gateway: nowhere else to go
    expect(r.fallback).toEqual(["node:gateway"]);
    c.fallback = ["node:b", "node:gateway"];
    c.actors.router.fallback = [];
    r = resolveScaling(parseScaling(c), { n_routed_experts: 16 });
    expect(fb(r, "expert")).toEqual([["node:b", "node:gateway"], ["node:gateway"]]); // never its own location
    expect(fb(r, "router")).toEqual([[]]);
    expect(r.locations).toEqual(["node:gateway", "node:a", "node:b"]);
  });

  test("placement lists spread a kind's actors round-robin; idle timeouts per kind", () => {
    const c = base();
    c.idle_timeout_ms = 60000;
    c.actors.expert = { placement: ["worker:1", "process:0"], idle_timeout_ms: null, experts: { split: 3 } };
    c.actors.attention = { replicas: 2, placement: "inprocess", device: "cuda:1" };
    const r = resolveScaling(parseScaling(c), { n_routed_experts: 16 });
    expect(r.placement.filter((p) => p.kind === "expert").map((p) => p.location)).toEqual(["worker:1", "process:0", "worker:1"]);
    expect(r.idleTimeoutMs).toEqual({ "*": 60000, expert: Infinity });
    expect(r.device).toEqual({ attention: "cuda:1", router: "cpu", expert: "cpu" });
    expect(r.locations).toEqual(["worker:0", "inprocess", "worker:1", "process:0"]);
  });
});

describe("shipped scaling configs", () => {
  test("the four configs are shipped", () => {
    const names = readdirSync(DIR).filter((f) => f.endsWith(".yaml")).map((f) => f.replace(/\.yaml$/, ""));
    for (const n of SHIPPED) expect(names).toContain(n);
  });

  for (const name of SHIPPED) {
    for (const E of [16, 64, 256]) {
      test(`${name} resolves for ${E} routed experts: every expert held, hot copies on another actor`, () => {
        const c: ScalingConfig = loadScaling(`${DIR}/${name}.yaml`);
        const r = resolveScaling(c, { n_routed_experts: E, n_moe_layers: 3 });
        expect(r.expertTable.length).toBe(E);
        for (const holders of r.expertTable) {
          expect(holders.length).toBeGreaterThanOrEqual(1);
          expect(new Set(holders).size).toBe(holders.length);
        }
        expect(r.attentionReplicas).toBeGreaterThanOrEqual(1);
        expect(r.routers).toBeGreaterThanOrEqual(1);
        if (name === "experts-4-redundant") {
          expect(Object.keys(r.expertActors)).toEqual(["0", "1", "2", "3"]);
          expect(r.hotExperts.length).toBe(2);
          for (const e of r.hotExperts) expect(r.expertTable[e]!.length).toBe(2);
          expect(new Set(r.placement.filter((p) => p.kind === "expert").map((p) => p.location)).size).toBe(4);
        }
        if (name === "single-worker") expect(r.locations).toEqual(["worker:0"]);
        if (name === "inprocess") expect(r.locations).toEqual(["inprocess"]);
        if (name === "split-workers") {
          const loc = (k: string) => r.placement.find((p) => p.kind === k)!.location;
          expect([loc("attention"), loc("router"), loc("expert")]).toEqual(["worker:0", "worker:0", "worker:1"]);
        }
      });
    }
  }

  test("a resolved config's placement starts an ActorSystem (here with the test kinds)", async () => {
    const r = resolveScaling(loadScaling(`${DIR}/inprocess.yaml`), { n_routed_experts: 16 });
    const sys = await ActorSystem.start({
      registry: { module: KINDS },
      placement: r.placement,
      defaultLocation: r.defaultLocation,
      idleTimeoutMs: r.idleTimeoutMs,
    });
    expect(sys.locations()).toEqual(["inprocess"]);
    await sys.stop();
  });
});
