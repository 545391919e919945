// End to end on the device: every golden check of the fixtures (prefill and decode logits,
// batched greedy continuations, MTP, the router's choices) through the device kernels, with the
// project's own forward pass (staged.ts), on every fixture, the CPU emulator included (about a
// minute there; the trained model's near ties test the kernels' precision).
import { expect, setDefaultTimeout, test } from "bun:test";
import { openCheckpoint } from "../../src/checkpoint/checkpoint.ts";
import { buildBatch } from "../../src/model/batch.ts";
import { LocalMoE } from "../../src/model/moe.ts";
import { Transformer } from "../../src/model/transformer.ts";
import { Golden } from "../helpers/golden.ts";
import { fixtures, goldenSuite } from "../golden/suite.ts";
import { forTargets } from "./harness.ts";
import { StagedBackend, stagedKernels } from "./staged.ts";

setDefaultTimeout(600_000); // the emulator runs these in tens of seconds

forTargets("golden", ({ name, device }) => {
  const k = stagedKernels(device);
  for (const fx of fixtures()) {
    goldenSuite(`device ${name}`, fx, async (f) => new StagedBackend(f.model, k, { pages: 64, pageSize: 16, mtp: true }));

    test(`${fx.name}: router's chosen experts and weights`, async () => {
      const g = new Golden(fx.golden), ck = openCheckpoint(fx.model), c = ck.config;
      const model = new Transformer(ck, c, k), moe = new LocalMoE(ck, c, k), K = c.num_experts_per_tok;
      const tokens = g.ids("router.tokens"), routes = new Map<number, { ids: Int32Array; weights: Float32Array }>();
      moe.onRouting = (l, r) => routes.set(l, r);
      await model.forward(buildBatch([{ tokens, start: 0, pages: Array.from({ length: 16 }, (_, i) => i) }], 16),
        model.newCaches(16, 16), moe.routed);
      for (const l of g.json.router.moe_layers as number[]) {
        const wantIds = g.ids(`router.layer${l}.expert_ids`), wantW = g.f32(`router.layer${l}.weights`), got = routes.get(l)!;
        for (let t = 0; t < tokens.length; t++) {
          const byId = (ids: ArrayLike<number>, w: ArrayLike<number>) =>
            new Map(Array.from({ length: K }, (_, j) => [ids[t * K + j], w[t * K + j]]));
          const want = byId(wantIds, wantW), have = byId(got.ids, got.weights);
          expect([...have.keys()].sort((a, b) => a - b)).toEqual([...want.keys()].sort((a, b) => a - b));
          for (const [e, w] of want) expect(Math.abs(have.get(e)! - w)).toBeLessThan(1e-5);
        }
      }
    });
  }
});
