// How the routed experts are spread over expert actors (a scaling config's actors.expert.experts):
// an even split, with redundant copies of the hottest experts (DeepSeek's EPLB), or an explicit
// table. Split out of scaling.ts, which parses the config and resolves the rest.
//
//   parseExpertIds("0-7,12"); IDS_RE; hotOrder(shape, load, fail); placeExperts(config, E, hot, fail)
import type { ModelShape, ResolveOptions, ScalingConfig } from "./scaling.ts";

export const IDS_RE = /^\s*\d+(\s*-\s*\d+)?(\s*,\s*\d+(\s*-\s*\d+)?)*\s*$/;
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

/** Experts by load, most loaded first (ties: lower id). No profile: spread evenly over the ids. */
export function hotOrder(shape: ModelShape, load: ResolveOptions["load"], fail: (f: string, m: string) => never): (k: number) => number[] {
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

export function placeExperts(config: ScalingConfig, E: number, hot: (k: number) => number[], fail: (f: string, m: string) => never) {
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

/** Online EPLB's re-placement (src/engine/eplb.ts): every expert keeps its primary holder, and the
 * K experts with most load (> 0) each get one copy, on the expert actor with least load once each
 * hot expert's load is shared half and half with its copy (DeepSeek's EPLB, greedy: hottest
 * first; ties: fewer experts held, then the actors after the primary in key order). Copies of
 * other experts are dropped. `load[e]` = tokens routed to expert e (any window, all layers). */
export function replicateHot(table: readonly (readonly string[])[], load: readonly number[], K: number): string[][] {
  if (load.length !== table.length) throw new Error(`load has ${load.length} experts, the table ${table.length}`);
  const primary = table.map((h, e) => h[0] ?? fail(`expert ${e} has no holder`));
  const keys = [...new Set(table.flat())].sort((a, b) => Number(a) - Number(b) || (a < b ? -1 : a > b ? 1 : 0));
  const onActor = new Map(keys.map((k) => [k, 0])), held = new Map(keys.map((k) => [k, 0]));
  primary.forEach((k, e) => {
    onActor.set(k, onActor.get(k)! + load[e]!);
    held.set(k, held.get(k)! + 1);
  });
  const out = primary.map((k) => [k]);
  if (keys.length < 2) return out;
  const hot = load.map((x, e) => [x, e] as const).filter(([x]) => x > 0).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, K);
  for (const [x, e] of hot) {
    const p = primary[e]!, from = keys.indexOf(p);
    let best: string | undefined;
    for (let j = 1; j < keys.length; j++) {
      const k = keys[(from + j) % keys.length]!;
      if (best === undefined || onActor.get(k)! < onActor.get(best)! || (onActor.get(k) === onActor.get(best) && held.get(k)! < held.get(best)!)) best = k;
    }
    onActor.set(p, onActor.get(p)! - x / 2);
    onActor.set(best!, onActor.get(best!)! + x / 2);
    held.set(best!, held.get(best!)! + 1);
    out[e]!.push(best!);
  }
  return out;
}

function fail(msg: string): never {
  throw new Error(msg);
}
