// End to end on the device: every golden check of the fixtures (prefill and decode logits,
// batched greedy continuations, MTP, the router's choices) through the device kernels, with the
// project's own forward pass (staged.ts), on every fixture, the CPU emulator included (about a
// minute there; the trained model's near ties test the kernels' precision).
import { setDefaultTimeout, test } from "bun:test";
import { expectRouting, fixtures, goldenSuite } from "../golden/suite.ts";
import { forTargets } from "./harness.ts";
import { StagedBackend, stagedKernels } from "./staged.ts";

setDefaultTimeout(600_000); // the emulator runs these in tens of seconds

forTargets("golden", ({ name, device }) => {
  const k = stagedKernels(device);
  for (const fx of fixtures()) {
    goldenSuite(`device ${name}`, fx, async (f) => new StagedBackend(f.model, k, { pages: 64, pageSize: 16, mtp: true }));

    test(`${fx.name}: router's chosen experts and weights`, () => expectRouting(fx, k));
  }
});
