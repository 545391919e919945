// deploy/k8s/ against the Kubernetes and KEDA schemas (kubernetes-models, @kubernetes-models/keda):
// every YAML document is built as the model class of its apiVersion/kind and validated; the pieces the
// issue names are there (NATS with an auth Secret, the gateway with its probes, a worker Deployment per
// node group of the mounted scaling config, ScaledObjects to zero); and every metric a ScaledObject's
// query names is one the gateway's /metrics exports, read from a real engine over the tiny fixture.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { ScaledObject, TriggerAuthentication } from "@kubernetes-models/keda/keda.sh/v1alpha1";
import { Deployment } from "kubernetes-models/apps/v1";
import { ConfigMap, Namespace, Secret, Service } from "kubernetes-models/v1";
import { parseAllDocuments } from "yaml";
import { createBackend } from "../src/commands/backend.ts";
import { loadModelConfig } from "../src/config/model.ts";
import { parseScaling, resolveScaling } from "../src/config/scaling.ts";
import { ModelEngine } from "../src/engine/engine.ts";
import { createApp } from "../src/gateway/index.ts";
import { moeLayers } from "../src/model/moe.ts";
import { loadTokenizer } from "../src/tokenizer/index.ts";

const root = new URL("..", import.meta.url).pathname;
const DIR = `${root}deploy/k8s`;
const MODEL = `${root}test/fixtures/tiny-dsv3`;

// the model class of each apiVersion/kind the manifests may use; another kind is a test failure
const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  "v1/Namespace": Namespace, "v1/Secret": Secret, "v1/ConfigMap": ConfigMap, "v1/Service": Service,
  "apps/v1/Deployment": Deployment,
  "keda.sh/v1alpha1/ScaledObject": ScaledObject, "keda.sh/v1alpha1/TriggerAuthentication": TriggerAuthentication,
};

interface Doc { file: string; obj: any }
const docs: Doc[] = readdirSync(DIR).filter((f) => /\.ya?ml$/.test(f)).sort().flatMap((file) =>
  parseAllDocuments(readFileSync(`${DIR}/${file}`, "utf8")).map((d) => {
    if (d.errors.length) throw new Error(`${file}: ${d.errors[0]!.message}`);
    return { file, obj: d.toJS() };
  }).filter((d) => d.obj !== null));
const ofKind = (kind: string) => docs.filter((d) => d.obj.kind === kind).map((d) => d.obj);
const named = (kind: string, name: string) => ofKind(kind).find((o) => o.metadata.name === name);

function validate(obj: any): void {
  const Model = MODELS[`${obj.apiVersion}/${obj.kind}`];
  if (!Model) throw new Error(`no schema for ${obj.apiVersion} ${obj.kind}`);
  new Model(obj).validate();
}

/** Metric names in a PromQL query: the identifiers the project's metrics are named with. */
const metricsOf = (query: string) => [...query.matchAll(/\bmoe_[a-z0-9_]+/g)].map((m) => m[0]);

describe("deploy/k8s manifests", () => {
  test("every document validates against its Kubernetes or KEDA schema", () => {
    expect(docs.length).toBeGreaterThan(0);
    for (const d of docs) {
      try {
        validate(d.obj);
      } catch (e) {
        throw new Error(`${d.file}: ${d.obj.kind} ${d.obj.metadata?.name}: ${(e as Error).message}`);
      }
    }
  });

  test("the validation refuses a broken manifest (the check can fail)", () => {
    const gw = structuredClone(named("Deployment", "moe-gateway"));
    gw.spec.replicas = "one";
    expect(() => validate(gw)).toThrow();
    const so = structuredClone(ofKind("ScaledObject")[0]);
    delete so.spec.scaleTargetRef;
    expect(() => validate(so)).toThrow();
  });

  test("NATS requires the password from the Secret the gateway and workers read NATS_URL from", () => {
    const secret = named("Secret", "moe-nats");
    expect(Object.keys(secret.stringData).sort()).toEqual(["password", "url"]);
    const conf = named("ConfigMap", "nats-config").data["nats.conf"];
    expect(conf).toMatch(/authorization\s*{[^}]*password:\s*\$NATS_PASSWORD/);
    const env = (dep: any) => dep.spec.template.spec.containers[0].env as any[];
    expect(env(named("Deployment", "nats")).find((e) => e.name === "NATS_PASSWORD").valueFrom.secretKeyRef).toEqual({ name: "moe-nats", key: "password" });
    for (const dep of ofKind("Deployment").filter((d) => d.metadata.name !== "nats")) {
      expect(env(dep).find((e) => e.name === "NATS_URL")?.valueFrom.secretKeyRef).toEqual({ name: "moe-nats", key: "url" });
    }
  });

  test("the gateway serves with readiness on /health, liveness on /health/live, behind a Service", () => {
    const gw = named("Deployment", "moe-gateway");
    const c = gw.spec.template.spec.containers[0];
    expect([...c.command, ...c.args].join(" ")).toStartWith("npx moe serve");
    expect(c.readinessProbe.httpGet.path).toBe("/health");
    expect(c.livenessProbe.httpGet.path).toBe("/health/live");
    const svc = named("Service", "moe-gateway");
    expect(svc.spec.selector).toEqual(gw.spec.selector.matchLabels);
  });

  test("one worker Deployment per node group of the mounted scaling config, each scaled to zero by KEDA", () => {
    const cfg = parseScaling(Bun.YAML.parse(named("ConfigMap", "moe-scaling").data["scaling.yaml"]), "moe-scaling");
    const model = loadModelConfig(`${MODEL}/config.json`);
    const resolved = resolveScaling(cfg, { n_routed_experts: model.n_routed_experts, moe_layers: moeLayers(model) });
    const nodes = [...new Set(resolved.actors.map((a) => a.location))].filter((l) => l !== cfg.placement).map((l) => l.replace(/^node:/, ""));
    expect(nodes.length).toBeGreaterThan(0);
    for (const node of nodes) {
      const dep = ofKind("Deployment").find((d) => d.spec.template.spec.containers[0].args.join(" ").includes(`--node ${node}`));
      expect(dep, `a Deployment running moe worker --node ${node}`).toBeDefined();
      expect(dep.spec.template.spec.containers[0].command.join(" ")).toBe("npx moe worker");
      const so = ofKind("ScaledObject").find((s) => s.spec.scaleTargetRef.name === dep.metadata.name);
      expect(so, `a ScaledObject for ${dep.metadata.name}`).toBeDefined();
      expect(so.spec.minReplicaCount).toBe(0);
      expect(so.spec.triggers.map((t: any) => t.type)).toContain("prometheus");
    }
  });
});

describe("the metrics the ScaledObjects scale on", () => {
  let engine: ModelEngine, app: ReturnType<typeof createApp>;
  beforeAll(async () => {
    // the demand gauges exist where a kind autoscales: the config the issue ships for it
    const backend = await createBackend({ model: MODEL, scaling: `${root}configs/scaling/autoscale.yaml`, kvTokens: 1024 });
    engine = new ModelEngine(backend, { servedModelName: "tiny" });
    app = createApp({ engine, tokenizer: await loadTokenizer(MODEL) });
    await engine.warmup();
  }, 120_000);
  afterAll(async () => engine?.close());

  test("every metric a ScaledObject names is one /metrics exports", async () => {
    const text = await (await app.request("/metrics")).text();
    const exported = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
    const named = ofKind("ScaledObject").flatMap((so) => so.spec.triggers.filter((t: any) => t.type === "prometheus")
      .flatMap((t: any) => metricsOf(t.metadata.metricName ?? "").concat(metricsOf(t.metadata.query))));
    expect(named.length).toBeGreaterThan(0);
    expect([...new Set(named)].filter((m) => !exported.has(m))).toEqual([]);
    // and with the label values the queries select: moe_actor_backlog{kind="expert"} has a sample
    const queries = ofKind("ScaledObject").flatMap((so) => so.spec.triggers.map((t: any) => t.metadata.query as string));
    for (const [, name, labels] of queries.flatMap((q) => [...q.matchAll(/\b(moe_[a-z0-9_]+)\{([^}]*)\}/g)])) {
      const want = labels!.split(",").map((l: string) => l.trim()).filter(Boolean);
      const samples = text.split("\n").filter((l) => l.startsWith(`${name}{`));
      expect(samples.some((l) => want.every((w: string) => l.includes(w))), `${name}{${labels}} in /metrics`).toBe(true);
    }
  }, 60_000);
});
