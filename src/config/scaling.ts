// Scaling configs (configs/scaling/*.yaml|json): which model actors exist, how many, which routed
// experts each expert actor holds, where each runs, idle timeouts, batch limits, devices. Parsed
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

export const MODEL_KINDS = ["attention", "router", "expert", "mtp"] as const;

export class ScalingError extends Error {
  /** `detail` names its fields itself when `named` (several zod issues in one message). */
  constructor(readonly field: string, detail: string, readonly source?: string, named = false) {
    super(`${source ? `scaling config ${source}: ` : ""}${field && !named ? `${field}: ` : ""}${detail}`);
    this.name = "ScalingError";
  }
}

const IDS_RE = /^\s*\d+(\s*-\s*\d+)?(\s*,\s*\d+(\s*-\s*\d+)?)*\s*$/;
/** "0-7,12" -> [0..7, 12]; the caller checks the range against the model. */
export function parseExpertIds(spec: string | readonly number[]): number[] {
  if (typeof spec !== "string") return [...new Set(spec)].sort((a, b) => a - b);
  const out = new Set<number>();
  for (const part of spec.split(",")) {
    const [a, b = a] = part.split("-").map((s) => Number(s.trim()));
    for (let e = a!; e <= b!; e++) out.add(e);
  }
  return [...out].sort((a, b) => a - b);
}

// worker:N and process:N are hosts on this machine; node:NAME a host reached over NATS.
const Location = z.string().regex(/^(inprocess|worker:\d+|process:\d+|node:[A-Za-z0-9_.-]+)$/, {
  message: 'must be "inprocess", "worker:N", "process:N" or "node:NAME"',
});
const Device = z.string().regex(/^(cpu|cuda:\d+|hip:\d+)$/, { message: 'must be "cpu", "cuda:N" or "hip:N"' });
const Count = (min: number) => z.int({ error: "must be an integer" }).min(min, { error: `must be >= ${min}` });
const IdleTimeout = z.union([Count(1), z.null()], { message: "must be a positive integer (ms) or null (never)" });

const ExpertsSpec = z
  .strictObject({
    split: Count(1).optional(), // the routed experts split evenly over N expert actors
    replicate_hot: Count(0).default(0), // the K most loaded experts get a second copy
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
  });

const KindSpec = z.strictObject({
  replicas: Count(1).optional(),
  /** One location, or a list the kind's actors are spread over round-robin. */
  placement: z.union([Location, z.array(Location).min(1)]).optional(),
  idle_timeout_ms: IdleTimeout.optional(),
  device: Device.optional(),
  experts: ExpertsSpec.optional(),
});

export const ScalingSchema = z.strictObject({
  description: z.string().optional(),
  placement: Location.default("worker:0"), // for kinds that do not say
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

export interface ResolvedActor { kind: string; key: string; location: string; device: string }

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
  device: Record<string, string>;
  /** For ActorSystem.start: one rule per actor, the rest to defaultLocation. */
  placement: { kind: string; key: string; location: string }[];
  defaultLocation: string;
  /** Per kind (Infinity = never) and "*" for the rest; for ActorSystem.start. */
  idleTimeoutMs: Record<string, number>;
  askTimeoutMs?: number;
  batch: { max_batch_tokens: number; max_running_seqs: number };
  locations: string[];
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
  for (const [kind, spec] of Object.entries(config.actors)) {
    if (kind === "expert" && spec.replicas !== undefined) fail("actors.expert.replicas", "the expert actors are counted by experts.split or experts.table");
    const keys = kind === "expert" ? Object.keys(expertActors) : Array.from({ length: spec.replicas ?? 1 }, (_, i) => String(i));
    const locs = spec.placement === undefined ? [config.placement] : [spec.placement].flat();
    device[kind] = spec.device ?? config.device;
    if (spec.idle_timeout_ms !== undefined) idle[kind] = spec.idle_timeout_ms ?? Infinity;
    keys.forEach((key, i) => actors.push({ kind, key, location: locs[i % locs.length]!, device: device[kind]! }));
  }
  return deepFreeze({
    source: src,
    actors,
    attentionReplicas: config.actors.attention!.replicas ?? 1,
    routers: config.actors.router!.replicas ?? 1,
    expertTable,
    expertActors,
    hotExperts,
    device,
    placement: actors.map(({ kind, key, location }) => ({ kind, key, location })),
    defaultLocation: config.placement,
    idleTimeoutMs: idle,
    askTimeoutMs: config.ask_timeout_ms,
    batch: { max_batch_tokens: config.max_batch_tokens, max_running_seqs: config.max_running_seqs },
    locations: [...new Set([config.placement, ...actors.map((a) => a.location)])],
  });
}

/** Experts by load, most loaded first (ties: lower id). No profile: spread evenly over the ids. */
function hotOrder(shape: ModelShape, load: ResolveOptions["load"], fail: (f: string, m: string) => never): (k: number) => number[] {
  const E = shape.n_routed_experts;
  if (!load) return (k) => Array.from({ length: k }, (_, i) => Math.floor((i * E) / k));
  const rows: readonly (readonly number[])[] = Array.isArray(load) ? [load as readonly number[]] : Object.values(load);
  const total = new Array<number>(E).fill(0);
  for (const row of rows) {
    if (row.length !== E) fail("load", `has ${row.length} experts, the model ${E}`);
    row.forEach((x, e) => (total[e]! += x));
  }
  const nLayers = shape.n_moe_layers ?? shape.moe_layers?.length;
  if (!Array.isArray(load) && nLayers !== undefined && rows.length > nLayers) fail("load", `has ${rows.length} layers, the model ${nLayers} MoE layers`);
  const order = total.map((x, e) => [x, e] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).map(([, e]) => e);
  return (k) => order.slice(0, k);
}

function placeExperts(config: ScalingConfig, E: number, hot: (k: number) => number[], fail: (f: string, m: string) => never) {
  const spec = config.actors.expert!.experts;
  if (!spec) return fail("actors.expert.experts", `missing: say how the ${E} routed experts are held (e.g. { split: 1 })`);
  const expertActors: Record<string, number[]> = {};
  const expertTable: string[][] = Array.from({ length: E }, () => []);
  const hold = (key: string, e: number) => {
    if (expertTable[e]!.includes(key)) return;
    expertTable[e]!.push(key); // first holder = primary
    (expertActors[key] ??= []).push(e);
  };
  const done = (hotExperts: number[]) => {
    for (const held of Object.values(expertActors)) held.sort((a, b) => a - b);
    return { expertActors, expertTable, hotExperts };
  };
  if (spec.table) {
    spec.table.forEach((row, i) => {
      const ids = parseExpertIds(row.experts);
      const bad = ids.find((e) => e >= E);
      if (bad !== undefined) fail(`actors.expert.experts.table[${i}].experts`, `expert ${bad} is out of range (the model has ${E} routed experts: 0-${E - 1})`);
      for (const e of ids) hold(String(row.actor), e);
    });
    return done([]);
  }
  const n = spec.split!;
  if (n > E) fail("actors.expert.experts.split", `${n} expert actors for ${E} routed experts: each needs at least one`);
  for (let a = 0; a < n; a++) {
    for (let e = Math.floor((a * E) / n); e < Math.floor(((a + 1) * E) / n); e++) hold(String(a), e);
  }
  const K = spec.replicate_hot;
  if (K > 0 && n < 2) fail("actors.expert.experts.replicate_hot", "a redundant copy needs a second expert actor (split >= 2)");
  if (K > E) fail("actors.expert.experts.replicate_hot", `${K} copies for ${E} routed experts`);
  const hotExperts = hot(K);
  for (const e of hotExperts) {
    // The copy goes to the actor that holds fewest experts; ties: the first one after e's primary.
    const primary = Number(expertTable[e]![0]);
    let best = (primary + 1) % n;
    for (let j = 2; j < n; j++) {
      const a = (primary + j) % n;
      if (expertActors[String(a)]!.length < expertActors[String(best)]!.length) best = a;
    }
    hold(String(best), e);
  }
  return done(hotExperts);
}
