// The device-resident forward (forward.ts, what the benchmark times) against the goldens:
// prefill logits of every prompt length and step-by-step decode logits.
import { afterAll, setDefaultTimeout, test } from "bun:test";
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
