// The device-resident forward (forward.ts, what the benchmark times) against the goldens
// (prefill logits of every prompt length, step-by-step decode logits) and against the CPU
// forward on a bench-s checkpoint.
import { afterAll, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openCheckpoint } from "../../src/checkpoint/checkpoint.ts";
import { cpuKernels } from "../../src/kernels/kernels.ts";
import { buildBatch } from "../../src/model/batch.ts";
import { LocalMoE } from "../../src/model/moe.ts";
import { Transformer } from "../../src/model/transformer.ts";
import { Golden } from "../helpers/golden.ts";
import { expectClose, fixtures } from "../golden/suite.ts";
import { GpuForward } from "./forward.ts";
import { forTargets } from "./harness.ts";

setDefaultTimeout(600_000);

forTargets("device-resident forward", ({ name, device }) => {
  for (const fx of fixtures()) {
    if (name === "emu" && fx.name !== "tiny-dsv3" && !process.env.MOE_EMU_ALL) continue;
    let model: GpuForward | null = null;
    const open = () => (model ??= new GpuForward(device, fx.model, 512, 16));
    afterAll(() => model?.destroy());

    test(`${fx.name}: prefill logits of every prompt length`, () => {
      const g = new Golden(fx.golden), m = open();
      for (const n of [1, 7, 33, 150]) {
        if (!g.has(`prefill.len${n}.tokens`)) continue;
        m.run(g.ids(`prefill.len${n}.tokens`), 0);
        expectClose(m.logits(), g.f32(`prefill.len${n}.logits`), `prefill len ${n}`);
      }
    });

    test(`${fx.name}: step-by-step decode logits`, () => {
      const g = new Golden(fx.golden), m = open(), prompt = g.ids("decode.prompt"), fed = g.ids("decode.fed_tokens");
      const V = m.c.vocab_size, steps = g.f32("decode.step_logits");
      m.run(prompt, 0);
      expectClose(m.logits(), g.f32("decode.prefill_logits"), "decode prefill");
      for (let j = 0; j < fed.length; j++) {
        m.run([fed[j]], prompt.length + j);
        expectClose(m.logits(), steps.subarray(j * V, (j + 1) * V), `decode step ${j}`);
      }
    });
  }
});

// The shapes the fixtures miss (q_proj instead of q_lora, v_head_dim != qk_nope_head_dim, partial
// 128-blocks, two shared experts): a bench-s checkpoint against the CPU library's forward.
forTargets("device-resident forward vs the CPU forward", ({ device }) => {
  test("bench-s: prefill (expanded attention) and decode (absorbed) logits", async () => {
    const dir = mkdtempSync(join(tmpdir(), "moe-bench-s-"));
    try {
      const r = Bun.spawnSync([process.execPath, join(import.meta.dir, "..", "..", "src", "cli.ts"), "make-model", "--preset", "bench-s", "--format", "fp8", "--out", dir, "--quiet"]);
      if (r.exitCode !== 0) throw new Error(`make-model failed: ${r.stderr}`);
      const ck = openCheckpoint(dir), c = ck.config, k = cpuKernels();
      const model = new Transformer(ck, c, k), moe = new LocalMoE(ck, c, k), caches = model.newCaches(8, 16);
      const prompt = Array.from({ length: 40 }, (_, i) => (i * 37 + 5) % c.vocab_size), pages = Array.from({ length: 8 }, (_, i) => i);
      const m = new GpuForward(device, dir, 128, 16);
      try {
        const want = await model.forward(buildBatch([{ tokens: prompt, start: 0, pages }], 16), caches, moe.routed);
        m.run(prompt, 0);
        expectClose(m.logits(), want.logits, "bench-s prefill");
        const next = await model.forward(buildBatch([{ tokens: [7], start: 40, pages }], 16), caches, moe.routed);
        m.run([7], 40);
        expectClose(m.logits(), next.logits, "bench-s decode");
      } finally {
        m.destroy();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
