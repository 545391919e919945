// The router actor: owns every MoE layer's gate; sends each token's hidden state to the expert
// actors holding its chosen experts (spreading load over redundant copies), and combines their
// answers with the routing weights (the role of DeepEP's dispatch/combine). Counts tokens per
// expert per layer: the load that metrics show and online EPLB (src/engine/eplb.ts) reads to
// re-place hot experts, sending this router new expert tables while it serves.
import { defineActor } from "../src/runtime/actor.ts";
import { openCheckpoint } from "../src/checkpoint/checkpoint.ts";
import type { ModelConfig } from "../src/config/model.ts";
import { kernelsFor } from "../src/kernels/select.ts";
import { Gate, type Routing } from "../src/model/gate.ts";
import { moeLayers } from "../src/model/moe.ts";
import {
  EXPERT, type ExpertMsg, type ExpertTable, type ModelActorsConfig, ROUTER, type RouterMsg, type RouterReply,
} from "../src/protocol.ts";

interface State {
  c: ModelConfig;
  gates: Map<number, Gate>;
  tables: Map<number, ExpertTable>; // by version: the newest two (steps in flight keep theirs)
  load: Map<number, Float64Array>; // layer -> tokens per expert
  served: Map<string, number>; // expert actor key -> rows sent to it
}

/** Rows for one expert actor; `at` = each row's index in the routing ([T, k] flattened). */
interface Rows { token: number[]; expert: number[]; weight: number[]; at: number[] }

/** The expert actor that runs each chosen expert this time. An expert's rows go whole to one of
 * its holders (so its grouped matmul sees the same rows wherever it runs): the holder with the
 * fewest rows so far in this call, then the fewest rows served, then the table's order. Experts
 * with most rows choose first. */
function chooseHolders(r: Routing, table: ExpertTable, served: Map<string, number>): Map<number, string> {
  const rows = new Map<number, number>();
  for (const e of r.ids) rows.set(e, (rows.get(e) ?? 0) + 1);
  const now = new Map<string, number>(), chosen = new Map<number, string>();
  const cost = (k: string) => [now.get(k) ?? 0, served.get(k) ?? 0];
  for (const [e, n] of [...rows].sort((a, b) => b[1] - a[1] || a[0] - b[0])) {
    const holders = table[e];
    if (!holders?.length) throw new Error(`router: expert ${e} is held by no expert actor`);
    let key = holders[0]!;
    for (const h of holders) {
      const [a, b] = cost(h), [x, y] = cost(key);
      if (a < x || (a === x && b < y)) key = h;
    }
    chosen.set(e, key);
    now.set(key, (now.get(key) ?? 0) + n);
  }
  return chosen;
}

/** Splits a routing over expert actors; each expert's rows keep the routing's (token) order. */
function dispatch(r: Routing, table: ExpertTable, served: Map<string, number>): Map<string, Rows> {
  const holder = chooseHolders(r, table, served), out = new Map<string, Rows>();
  for (let i = 0; i < r.ids.length; i++) {
    const key = holder.get(r.ids[i]!)!;
    let a = out.get(key);
    if (!a) out.set(key, (a = { token: [], expert: [], weight: [], at: [] }));
    a.token.push(Math.floor(i / r.k));
    a.expert.push(r.ids[i]!);
    a.weight.push(r.weights[i]!);
    a.at.push(i);
  }
  return out;
}

/** out[t] = sum of token t's weighted expert rows, added in ascending expert id: one order
 * whichever actors ran them and whenever they answered. */
function combine(r: Routing, rowOf: Float32Array[], D: number): Float32Array {
  const out = new Float32Array(r.T * D); // [T, D]
  const order = new Array<number>(r.k);
  for (let t = 0; t < r.T; t++) {
    for (let j = 0; j < r.k; j++) order[j] = t * r.k + j;
    order.sort((a, b) => r.ids[a]! - r.ids[b]!);
    const o = out.subarray(t * D, t * D + D);
    for (const i of order) {
      const y = rowOf[i]!;
      for (let d = 0; d < D; d++) o[d] += y[d]!;
    }
  }
  return out;
}

/** Summed answers (one row per distinct token an actor was sent) added in ascending actor key: one
 * order, for a table whose every expert has a single holder (where an expert runs never changes). */
function combineSums(T: number, D: number, parts: { key: string; tokens: number[]; y: Float32Array }[]): Float32Array {
  const out = new Float32Array(T * D); // [T, D]
  parts.sort((a, b) => a.key.localeCompare(b.key, "en", { numeric: true }));
  for (const { tokens, y } of parts) {
    tokens.forEach((t, i) => {
      const o = out.subarray(t * D, t * D + D), row = y.subarray(i * D, i * D + D);
      for (let d = 0; d < D; d++) o[d] += row[d]!;
    });
  }
  return out;
}

const copies = new WeakMap<ExpertTable, boolean>();
/** Whether some expert has more than one holder: then answers come back unsummed (see ExpertMsg). */
function hasCopies(table: ExpertTable): boolean {
  let v = copies.get(table);
  if (v === undefined) copies.set(table, (v = table.some((holders) => holders.length > 1)));
  return v;
}

async function route(s: State, msg: Extract<RouterMsg, { type: "route" }>, ask: (key: string, m: ExpertMsg) => Promise<Float32Array>) {
  const gate = s.gates.get(msg.layer);
  if (!gate) throw new Error(`router: no gate for layer ${msg.layer}`);
  const D = s.c.hidden_size;
  const r = gate.route(msg.x, msg.T);
  let load = s.load.get(msg.layer);
  if (!load) s.load.set(msg.layer, (load = new Float64Array(s.c.n_routed_experts)));
  for (let i = 0; i < r.ids.length; i++) load[r.ids[i]!]++;
  const table = (msg.table !== undefined && s.tables.get(msg.table)) || s.tables.get(Math.max(...s.tables.keys()))!;
  const rows = hasCopies(table);
  const rowOf = new Array<Float32Array>(r.ids.length);
  const parts: { key: string; tokens: number[]; y: Float32Array }[] = [];
  await Promise.all([...dispatch(r, table, s.served)].map(async ([key, a]) => {
    s.served.set(key, (s.served.get(key) ?? 0) + a.at.length);
    // Send each distinct token once: x rows of this actor, assignments pointing into them.
    const distinct = [...new Set(a.token)], at = new Map(distinct.map((t, i) => [t, i]));
    const x = new Float32Array(distinct.length * D);
    distinct.forEach((t, i) => x.set(msg.x.subarray(t * D, t * D + D), i * D));
    const y = await ask(key, {
      type: "experts", layer: msg.layer, x,
      token: Int32Array.from(a.token, (t) => at.get(t)!), expert: Int32Array.from(a.expert), weight: Float32Array.from(a.weight), rows,
    });
    if (rows) a.at.forEach((i, row) => (rowOf[i] = y.subarray(row * D, row * D + D)));
    else parts.push({ key, tokens: distinct, y });
  }));
  return rows ? combine(r, rowOf, D) : combineSums(r.T, D, parts);
}

export const router = defineActor<State, RouterMsg, RouterReply>({
  kind: ROUTER,
  activate(ctx) {
    const cfg = ctx.config as ModelActorsConfig;
    const ck = openCheckpoint(cfg.model);
    const c = ck.config, k = kernelsFor(cfg.device?.[ROUTER]);
    const gates = new Map<number, Gate>();
    for (const l of moeLayers(c)) if (ck.has(`model.layers.${l}.mlp.gate.weight`)) gates.set(l, new Gate(ck, `model.layers.${l}`, c, k));
    return { c, gates, tables: new Map([[0, cfg.expertTable]]), load: new Map(), served: new Map() };
  },
  async handle(s, msg, ctx) {
    switch (msg.type) {
      case "load":
        return Object.fromEntries([...s.load].map(([l, v]) => [l, Array.from(v)]));
      case "actor_load":
        return Object.fromEntries(s.served);
      case "table": {
        const E = s.c.n_routed_experts;
        if (msg.table.length !== E || msg.table.some((h) => !h.length)) throw new Error(`router: a table must name a holder for each of the ${E} experts`);
        s.tables.set(msg.version, msg.table);
        for (const v of [...s.tables.keys()].sort((a, b) => b - a).slice(2)) s.tables.delete(v);
        return msg.version;
      }
      case "route":
        return route(s, msg, (key, m) => ctx.ask<Float32Array>(`${EXPERT}/${key}`, m, { retry: true }));
    }
  },
});
