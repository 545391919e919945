// Scaling configs (configs/scaling/*.yaml|json): which model actors exist, how many, which routed
// experts each expert actor holds, where each runs, where each may be re-activated while its host
// is lost (fallback), idle timeouts, the ask timeout, batch limits, devices. Parsed
// once at the edge (strict: unknown keys are errors) and resolved against the loaded model into a
// frozen table; every error names the field.
//
//   parseScaling(raw, source?) -> ScalingConfig; loadScaling(path) -> ScalingConfig
//   checkScaling(config, kinds?)    unknown actor kinds (default MODEL_KINDS)
//   resolveScaling(config, shape, {kinds?, load?}) -> ResolvedScaling (frozen)
//   parseExpertIds("0-7,12"); ScalingError (.field)
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { IDS_RE, hotOrder, parseExpertIds, placeExperts } from "./expert-table.ts";

export { parseExpertIds };

export const MODEL_KINDS = ["attention", "router", "expert", "mtp"] as const;

export class ScalingError extends Error {
  /** `detail` names its fields itself when `named` (several zod issues in one message). */
  constructor(readonly field: string, detail: string, readonly source?: string, named = false) {
    super(`${source ? `scaling config ${source}: ` : ""}${field && !named ? `${field}: ` : ""}${detail}`);
    this.name = "ScalingError";
  }
}


// worker:N and process:N are hosts on this machine; node:NAME a host reached over NATS.
const Location = z.string().regex(/^(inprocess|worker:\d+|process:\d+|node:[A-Za-z0-9_.-]+)$/, {
  message: 'must be "inprocess", "worker:N", "process:N" or "node:NAME"',
});
const Device = z.string().regex(/^(cpu|cuda:\d+|hip:\d+)$/, { message: 'must be "cpu", "cuda:N" or "hip:N"' });
const Count = (min: number) => z.int({ error: "must be an integer" }).min(min, { error: `must be >= ${min}` });
const IdleTimeout = z.union([Count(1), z.null()], { message: "must be a positive integer (ms) or null (never)" });
/** In order; the first whose host is up takes the actors of a lost host. [] = wait for the host. */
const Fallback = z.array(Location);
export const DEFAULT_ASK_TIMEOUT_MS = 30_000;

const ExpertsSpec = z
  .strictObject({
    split: Count(1).optional(), // the routed experts split evenly over N expert actors
    replicate_hot: Count(0).default(0), // the K most loaded experts get a second copy
    rebalance_ms: Count(1).optional(), // online EPLB: re-place the copies from observed load this often
    table: z
      .array(z.strictObject({
        actor: Count(0),
        experts: z.union([z.string().regex(IDS_RE, { message: 'must be expert ids like "0-7,12"' }), z.array(Count(0)).min(1)]),
      }))
      .min(1)
      .optional(),
  })
  .superRefine((v, ctx) => {
    if ((v.split === undefined) === (v.table === undefined)) ctx.addIssue({ code: "custom", message: "give exactly one of split or table" });
    if (v.table && v.replicate_hot > 0) ctx.addIssue({ code: "custom", path: ["replicate_hot"], message: "only with split (a table lists copies itself)" });
    if (v.rebalance_ms !== undefined && !(v.replicate_hot > 0)) ctx.addIssue({ code: "custom", path: ["rebalance_ms"], message: "only with replicate_hot >= 1 (it moves the hot experts' copies)" });
  });

// Hosts for one kind's actors, between min and max by backlog (src/runtime/autoscaler.ts). The
// kind's actors stay a fixed set; what scales is the hosts they are spread over.
const AutoscaleSpec = z.strictObject({
  min_replicas: Count(0),
  max_replicas: Count(1),
  target_backlog: Count(1), // asks/sequences one host is meant to absorb
  scale_down_after_ms: Count(1), // backlog low this long before a host is drained
  host: z.enum(["worker", "process"]).default("worker"), // what a host is locally
}).refine((a) => a.min_replicas <= a.max_replicas, { path: ["min_replicas"], message: "must be <= max_replicas" });
export type AutoscaleConfig = z.infer<typeof AutoscaleSpec>;
/** Kinds whose actors hold no state between asks: the only ones a scaler may take to zero hosts. */
export const STATELESS_KINDS: readonly string[] = ["expert", "router"];

const KindSpec = z.strictObject({
  autoscale: AutoscaleSpec.optional(),
  replicas: Count(1).optional(),
  /** One location, or a list the kind's actors are spread over round-robin. */
  placement: z.union([Location, z.array(Location).min(1)]).optional(),
  idle_timeout_ms: IdleTimeout.optional(),
  device: Device.optional(),
  experts: ExpertsSpec.optional(),
  fallback: Fallback.optional(), // default: the top-level fallback
});

export const ScalingSchema = z.strictObject({
  description: z.string().optional(),
  placement: Location.default("worker:0"), // for kinds that do not say
  fallback: Fallback.optional(), // default: [placement], the gateway's own location
  device: Device.default("cpu"),
  idle_timeout_ms: IdleTimeout.default(null),
  ask_timeout_ms: Count(1).optional(),
  max_batch_tokens: Count(1).default(512),
  max_running_seqs: Count(1).default(64),
  actors: z.record(z.string().regex(/^[a-z][a-z0-9_]*$/, { message: "actor kind names are lower_snake_case" }), KindSpec),
});

export type ScalingConfig = Readonly<z.infer<typeof ScalingSchema>> & { readonly source?: string };

function fieldOf(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, p) => (typeof p === "number" ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)), "");
}

export function parseScaling(raw: unknown, source?: string): ScalingConfig {
  const r = ScalingSchema.safeParse(raw);
  if (!r.success) {
    const lines = r.error.issues.map((i) => {
      const field = fieldOf(i.path);
      const msg =
        i.code === "unrecognized_keys" ? `unknown key${i.keys.length > 1 ? "s" : ""} ${i.keys.map((k) => `"${k}"`).join(", ")}`
        : i.code === "invalid_key" ? "actor kind names are lower_snake_case"
        : i.code === "invalid_type" && i.message.endsWith("received undefined") ? "required"
        : i.message;
      return `${field || "(top level)"}: ${msg}`;
    });
    throw new ScalingError(fieldOf(r.error.issues[0]!.path), lines.join("; "), source, true);
  }
  return Object.freeze({ ...r.data, source });
}

export function loadScaling(path: string): ScalingConfig {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, "utf8")); // YAML is a superset of JSON
  } catch (err) {
    throw new ScalingError("", `cannot read: ${err instanceof Error ? err.message : String(err)}`, path);
  }
  return parseScaling(raw, path);
}

export function checkScaling(config: ScalingConfig, kinds: readonly string[] = MODEL_KINDS): void {
  for (const kind of Object.keys(config.actors)) {
    if (!kinds.includes(kind)) throw new ScalingError(`actors.${kind}`, `unknown actor kind "${kind}" (known: ${kinds.join(", ")})`, config.source);
  }
}

export interface ModelShape {
  n_routed_experts: number;
  /** The MoE layers (ids) or their count: only used to check a load profile. */
  moe_layers?: readonly number[];
  n_moe_layers?: number;
}

export interface ResolveOptions {
  kinds?: readonly string[];
  /** Tokens routed per expert (summed over layers), or per layer as the router reports it. */
  load?: readonly number[] | Readonly<Record<number, readonly number[]>>;
}

export interface ResolvedActor { kind: string; key: string; location: string; device: string; fallback: readonly string[] }

export interface ResolvedScaling {
  source?: string;
  actors: readonly ResolvedActor[];
  attentionReplicas: number;
  routers: number;
  /** expertTable[e] = keys of the expert actors holding routed expert e; the first is its primary. */
  expertTable: string[][];
  /** The experts each expert actor holds (all MoE layers), by key. */
  expertActors: Record<string, number[]>;
  /** Experts with a redundant copy, most loaded first. */
  hotExperts: number[];
  /** Online EPLB's period (experts.rebalance_ms); null: the copies stay where they were placed. */
  rebalanceMs: number | null;
  device: Record<string, string>;
  /** For ActorSystem.start: one rule per actor (with its fallbacks), the rest to defaultLocation. */
  placement: { kind: string; key: string; location: string; fallback: readonly string[] }[];
  defaultLocation: string;
  /** The top-level fallback (SystemOptions.fallback): where actors go while their host is lost. */
  fallback: readonly string[];
  /** Per kind (Infinity = never) and "*" for the rest; for ActorSystem.start. */
  idleTimeoutMs: Record<string, number>;
  /** ask_timeout_ms, default DEFAULT_ASK_TIMEOUT_MS: every ask to an actor ends by then. */
  askTimeoutMs: number;
  batch: { max_batch_tokens: number; max_running_seqs: number };
  locations: string[];
  /** Autoscaled kinds (ActorSystem's autoscale option): base = where their actors live with no host. */
  autoscale: Record<string, AutoscaleConfig & { base: string; hosts: string[]; keys: string[] }>;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === "object") for (const v of Object.values(Object.freeze(o))) deepFreeze(v);
  return o;
}

export function resolveScaling(config: ScalingConfig, shape: ModelShape, opts: ResolveOptions = {}): ResolvedScaling {
  const src = config.source;
  const fail = (field: string, msg: string): never => {
    throw new ScalingError(field, msg, src);
  };
  checkScaling(config, opts.kinds);
  const E = shape.n_routed_experts;
  for (const kind of ["attention", "router", "expert"]) {
    if (!config.actors[kind]) fail(`actors.${kind}`, `missing (the model needs ${kind} actors)`);
  }
  for (const [kind, spec] of Object.entries(config.actors)) {
    if (kind !== "expert" && spec.experts) fail(`actors.${kind}.experts`, "only expert actors hold routed experts");
  }
  const { expertActors, expertTable, hotExperts } = placeExperts(config, E, hotOrder(shape, opts.load, fail), fail);
  const unheld = expertTable.flatMap((keys, e) => (keys.length ? [] : [e]));
  if (unheld.length) fail("actors.expert.experts", `expert${unheld.length > 1 ? "s" : ""} ${unheld.join(", ")} held by no expert actor`);

  const actors: ResolvedActor[] = [];
  const device: Record<string, string> = {};
  const idle: Record<string, number> = config.idle_timeout_ms === null ? {} : { "*": config.idle_timeout_ms };
  const fallback = config.fallback ?? [config.placement];
  for (const [kind, spec] of Object.entries(config.actors)) {
    if (kind === "expert" && spec.replicas !== undefined) fail("actors.expert.replicas", "the expert actors are counted by experts.split or experts.table");
    const keys = kind === "expert" ? Object.keys(expertActors) : Array.from({ length: spec.replicas ?? 1 }, (_, i) => String(i));
    const locs = spec.placement === undefined ? [config.placement] : [spec.placement].flat();
    device[kind] = spec.device ?? config.device;
    if (spec.idle_timeout_ms !== undefined) idle[kind] = spec.idle_timeout_ms ?? Infinity;
    const fb = spec.fallback ?? fallback;
    keys.forEach((key, i) => {
      const location = locs[i % locs.length]!;
      actors.push({ kind, key, location, device: device[kind]!, fallback: fb.filter((l) => l !== location) });
    });
  }
  const autoscale = resolveAutoscale(config, actors, fail);
  return deepFreeze({
    source: src,
    autoscale,
    actors,
    attentionReplicas: config.actors.attention!.replicas ?? 1,
    routers: config.actors.router!.replicas ?? 1,
    expertTable,
    expertActors,
    hotExperts,
    rebalanceMs: config.actors.expert!.experts?.rebalance_ms ?? null,
    device,
    placement: actors.map(({ kind, key, location, fallback }) => ({ kind, key, location, fallback })),
    defaultLocation: config.placement,
    fallback,
    idleTimeoutMs: idle,
    askTimeoutMs: config.ask_timeout_ms ?? DEFAULT_ASK_TIMEOUT_MS,
    batch: { max_batch_tokens: config.max_batch_tokens, max_running_seqs: config.max_running_seqs },
    locations: [...new Set([config.placement, ...actors.map((a) => a.location), ...actors.flatMap((a) => a.fallback)])],
  });
}

/** Each autoscaled kind's hosts are fresh locations (worker:N past every N the config names). */
function resolveAutoscale(config: ScalingConfig, actors: readonly ResolvedActor[], fail: (f: string, m: string) => never): ResolvedScaling["autoscale"] {
  const out: ResolvedScaling["autoscale"] = {};
  const named = [config.placement, ...(config.fallback ?? []), ...actors.flatMap((a) => [a.location, ...a.fallback])];
  let next = 1 + Math.max(0, ...named.map((l) => Number(/^(?:worker|process):(\d+)$/.exec(l)?.[1] ?? 0)));
  for (const [kind, spec] of Object.entries(config.actors)) {
    const a = spec.autoscale;
    if (!a) continue;
    const field = `actors.${kind}.autoscale`;
    if (!STATELESS_KINDS.includes(kind)) {
      if (a.min_replicas < 1) fail(`${field}.min_replicas`, `${kind} actors hold state (KV pages): must be >= 1`);
      fail(field, `only stateless kinds (${STATELESS_KINDS.join(", ")}) move between hosts; ${kind} actors hold state`);
    }
    const own = actors.filter((x) => x.kind === kind);
    const base = own[0]!.location;
    if (own.some((x) => x.location !== base)) fail(`actors.${kind}.placement`, "an autoscaled kind has one placement: where its actors live with no host of their own");
    const hosts = Array.from({ length: a.max_replicas }, () => `${a.host}:${next++}`);
    out[kind] = { ...a, base, hosts, keys: own.map((x) => x.key) };
  }
  return out;
}
