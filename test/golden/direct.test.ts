// The model on one thread (no actors) against every golden case, including the per-layer
// activations, the router's choices and both attention implementations.
import { describe, expect, test } from "bun:test";
import { openCheckpoint } from "../../src/checkpoint/checkpoint.ts";
import { DirectBackend } from "../../src/engine/direct.ts";
import { cpuKernels } from "../../src/kernels/kernels.ts";
import { buildBatch } from "../../src/model/batch.ts";
import { LocalMoE } from "../../src/model/moe.ts";
import { ropeInvFreq } from "../../src/model/rope.ts";
import { Transformer } from "../../src/model/transformer.ts";
import { Golden } from "../helpers/golden.ts";
import { expectClose, expectRouting, fixtures, goldenSuite } from "./suite.ts";

for (const fx of fixtures()) {
  // The goldens are fp32 reference outputs: an f32 KV cache (the default, said here on purpose).
  goldenSuite("direct", fx, async (f) => new DirectBackend(f.model, { pages: 64, pageSize: 16, mtp: true, kvCacheDtype: "f32" }));

  describe(`direct internals: ${fx.name}`, () => {
    const g = new Golden(fx.golden);
    const ck = openCheckpoint(fx.model);
    const c = ck.config, k = cpuKernels();
    const model = new Transformer(ck, c, k);
    const moe = new LocalMoE(ck, c, k);
    const pages = Array.from({ length: 16 }, (_, i) => i);

    test("YaRN rope table", () => {
      const want = g.f32("rope.freqs_cis"), inv = ropeInvFreq(c), half = c.qk_rope_head_dim / 2;
      const got = new Float32Array(want.length);
      for (let p = 0; p < want.length / (2 * half); p++)
        for (let i = 0; i < half; i++) {
          const a = Math.fround(p * inv[i]);
          got[(p * half + i) * 2] = Math.cos(a);
          got[(p * half + i) * 2 + 1] = Math.sin(a);
        }
      expectClose(got, want, "freqs_cis", 1e-5, 0);
    });

    for (const impl of ["absorb", "naive"] as const)
      test(`per-layer activations (${impl})`, async () => {
        const tokens = g.ids("debug.tokens"), T = tokens.length, D = c.hidden_size;
        const seen = new Map<string, Float32Array>();
        const r = await model.forward(buildBatch([{ tokens, start: 0, pages }], 16), model.newCaches(16, 16), moe.routed, {
          impl, keepHidden: true, trace: (l, what, v) => seen.set(`debug.layer${l}.${what}`, v.slice()),
        });
        expect(seen.size).toBe(3 * c.num_hidden_layers);
        for (const [name, v] of seen) expectClose(v, g.f32(name), name);
        expectClose(r.hidden!, g.f32("debug.final_norm"), "final_norm");
        const last = g.f32("debug.logits");
        expectClose(r.logits, last.length === c.vocab_size ? last : last.subarray((T - 1) * c.vocab_size), "logits");
        void D;
      });

    test("router: chosen experts (as sets) and weights per MoE layer", () => expectRouting(fx, k));
  });
}
