// An expert actor takes experts and gives them up while serving (online EPLB): a new expert's
// weights are read on its first use, a dropped one's are no longer referenced, and the rows it
// answers are the same bits as the full model's experts give.
import { afterAll, describe, expect, test } from "bun:test";
import { openCheckpoint } from "../src/checkpoint/checkpoint.ts";
import { ACTOR_REGISTRY } from "../src/commands/backend.ts";
import { parseScaling, resolveScaling } from "../src/config/scaling.ts";
import { ActorBackend } from "../src/engine/actor-backend.ts";
import { cpuKernels } from "../src/kernels/kernels.ts";
import { ExpertSet } from "../src/model/experts.ts";
import { moeLayers } from "../src/model/moe.ts";

const model = new URL("fixtures/tiny-dsv3", import.meta.url).pathname;
const ck = openCheckpoint(model), c = ck.config, D = c.hidden_size, layer = moeLayers(c)[0]!;
const x = Float32Array.from({ length: 3 * D }, (_, i) => Math.sin(i * 0.37)); // [3, D]

/** Each (token, expert, weight) row on its own, by a set holding every expert. */
function reference(token: number[], expert: number[], weight: number[]): Float32Array {
  const all = new ExpertSet(ck, c, cpuKernels(), moeLayers(c), Array.from({ length: c.n_routed_experts }, (_, e) => e));
  const out = new Float32Array(token.length * D);
  token.forEach((t, r) => {
    const row = new Float32Array(D);
    all.forward(row, x.subarray(t * D, t * D + D), 1, layer, { token: Int32Array.of(0), expert: Int32Array.of(expert[r]!), weight: Float32Array.of(weight[r]!) });
    out.set(row, r * D);
  });
  return out;
}

describe("ExpertSet.hold / drop", () => {
  test("a held expert is read on first use; a dropped one is refused and unreferenced", () => {
    const set = new ExpertSet(ck, c, cpuKernels(), moeLayers(c), [0, 1]);
    const run = (e: number) => {
      const out = new Float32Array(D);
      set.forward(out, x, 1, layer, { token: Int32Array.of(0), expert: Int32Array.of(e), weight: Float32Array.of(0.5) });
      return out;
    };
    run(0);
    expect(() => run(5)).toThrow("expert 5 of layer 1 is not held here");
    set.hold([5]);
    expect(set.experts).toEqual([0, 1, 5]);
    expect(Array.from(run(5))).toEqual(Array.from(reference([0], [5], [0.5])));
    set.drop([5]);
    expect(set.experts).toEqual([0, 1]);
    const weights = (set as unknown as { byLayer: Map<number, unknown[]> }).byLayer.get(layer)!;
    expect(weights[5]).toBeNull(); // nothing here keeps expert 5's weights alive
    expect(() => run(5)).toThrow("not held here");
    set.hold([5]); // again after a drop: read anew
    expect(Array.from(run(5))).toEqual(Array.from(reference([0], [5], [0.5])));
    expect(() => set.hold([c.n_routed_experts])).toThrow("out of range");
  });
});

describe("the expert actor", () => {
  let b: ActorBackend;
  afterAll(() => b?.close());

  test("hold, drop and held answer its experts; rows of an expert it lacks make it take it", async () => {
    const scaling = resolveScaling(parseScaling({ placement: "inprocess", actors: { attention: {}, router: {}, expert: { experts: { split: 2 } } } }),
      { n_routed_experts: c.n_routed_experts });
    b = await ActorBackend.start({ model, config: c, scaling, registry: ACTOR_REGISTRY, pages: 8, pageSize: 16 });
    const ask = <R>(msg: unknown) => b.system.ask<R>("expert/0", msg);
    expect(await ask({ type: "held" })).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(await ask({ type: "hold", experts: [12] })).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 12]);
    expect(await ask({ type: "drop", experts: [12, 7] })).toEqual([0, 1, 2, 3, 4, 5, 6]);
    // Rows for experts 3 and 14 (not held: a restarted actor asked by a newer table): one row each.
    const token = [0, 2, 2, 1], expert = [3, 14, 3, 14], weight = [0.25, 0.5, 0.125, 1];
    const msg = { type: "experts", layer, x, token: Int32Array.from(token), expert: Int32Array.from(expert), weight: Float32Array.from(weight) };
    const y = await ask<Float32Array>({ ...msg, rows: true });
    expect(y).toEqual(reference(token, expert, weight));
    expect(await ask({ type: "held" })).toEqual([0, 1, 2, 3, 4, 5, 6, 14]);
    // Without copies in the table the answer is one summed row per row of x (x has 3 rows here).
    const summed = await ask<Float32Array>(msg);
    const rows = reference(token, expert, weight);
    expect(summed.length).toBe(3 * D);
    for (let t = 0; t < 3; t++) {
      const want = new Float32Array(D);
      token.forEach((tt, r) => { if (tt === t) for (let d = 0; d < D; d++) want[d]! += rows[r * D + d]!; });
      for (let d = 0; d < D; d++) expect(Math.abs(summed[t * D + d]! - want[d]!)).toBeLessThanOrEqual(1e-5 + 1e-5 * Math.abs(want[d]!));
    }
  });
});
