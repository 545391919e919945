// The router actor: owns every MoE layer's gate; sends each token's hidden state to the expert
// actors holding its chosen experts (spreading load over redundant copies), and combines their
// answers with the routing weights (the role of DeepEP's dispatch/combine). Counts tokens per
// expert per layer: the load that metrics show and placement reads.
import { defineActor } from "../src/runtime/actor.ts";
import { openCheckpoint } from "../src/checkpoint/checkpoint.ts";
import type { ModelConfig } from "../src/config/model.ts";
import { kernelsFor } from "../src/kernels/select.ts";
import { Gate, type Routing } from "../src/model/gate.ts";
import { moeLayers } from "../src/model/moe.ts";
import { EXPERT, type ExpertMsg, type ModelActorsConfig, ROUTER, type RouterMsg, type RouterReply } from "../src/protocol.ts";

interface State {
  c: ModelConfig;
  gates: Map<number, Gate>;
  table: string[][];
  load: Map<number, Float64Array>;
}

/** Splits a routing over expert actors; each redundant expert goes to its least busy holder. */
function dispatch(r: Routing, table: string[][]): Map<string, { token: number[]; expert: number[]; weight: number[] }> {
  const out = new Map<string, { token: number[]; expert: number[]; weight: number[] }>();
  const rows = (key: string) => out.get(key)?.token.length ?? 0;
  for (let i = 0; i < r.ids.length; i++) {
    const e = r.ids[i], holders = table[e];
    let key = holders[0];
    for (const h of holders) if (rows(h) < rows(key)) key = h;
    let a = out.get(key);
    if (!a) out.set(key, (a = { token: [], expert: [], weight: [] }));
    a.token.push(Math.floor(i / r.k));
    a.expert.push(e);
    a.weight.push(r.weights[i]);
  }
  return out;
}

export const router = defineActor<State, RouterMsg, RouterReply>({
  kind: ROUTER,
  activate(ctx) {
    const cfg = ctx.config as ModelActorsConfig;
    const ck = openCheckpoint(cfg.model);
    const c = ck.config, k = kernelsFor(cfg.device?.[ROUTER]);
    const gates = new Map<number, Gate>();
    for (const l of moeLayers(c)) if (ck.has(`model.layers.${l}.mlp.gate.weight`)) gates.set(l, new Gate(ck, `model.layers.${l}`, c, k));
    return { c, gates, table: cfg.expertTable, load: new Map() };
  },
  async handle(s, msg, ctx) {
    if (msg.type === "load") return Object.fromEntries([...s.load].map(([l, v]) => [l, Array.from(v)]));
    const gate = s.gates.get(msg.layer);
    if (!gate) throw new Error(`router: no gate for layer ${msg.layer}`);
    const D = s.c.hidden_size, T = msg.T;
    const r = gate.route(msg.x, T);
    let load = s.load.get(msg.layer);
    if (!load) s.load.set(msg.layer, (load = new Float64Array(s.c.n_routed_experts)));
    for (let i = 0; i < r.ids.length; i++) load[r.ids[i]]++;
    const out = new Float32Array(T * D); // [T, D] routed sum
    await Promise.all([...dispatch(r, s.table)].map(async ([key, a]) => {
      // Send each distinct token once: x rows of this actor, assignments pointing into them.
      const distinct = [...new Set(a.token)], at = new Map(distinct.map((t, i) => [t, i]));
      const x = new Float32Array(distinct.length * D);
      distinct.forEach((t, i) => x.set(msg.x.subarray(t * D, t * D + D), i * D));
      const m: ExpertMsg = {
        type: "experts", layer: msg.layer, x,
        token: Int32Array.from(a.token, (t) => at.get(t)!), expert: Int32Array.from(a.expert), weight: Float32Array.from(a.weight),
      };
      const y = await ctx.ask<Float32Array>(`${EXPERT}/${key}`, m, { retry: true });
      distinct.forEach((t, i) => {
        for (let d = 0; d < D; d++) out[t * D + d] += y[i * D + d];
      });
    }));
    return out;
  },
});
