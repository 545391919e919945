// The model's own forward pass (StepRunner, LocalMoE) run through a device library via the staged
// Kernels of src/kernels/staged.ts: the direct backend with device kernels. Slow, but it checks
// every kernel the forward uses, on the real fixture weights, against the goldens. The
// device-resident forward for benchmarks is forward.ts.
import { DirectBackend } from "../../src/engine/direct.ts";
import type { Kernels } from "../../src/kernels/kernels.ts";
import type { RunnerOptions } from "../../src/model/runner.ts";

export { stagedKernels } from "../../src/kernels/staged.ts";

export class StagedBackend extends DirectBackend {
  constructor(modelDir: string, k: Kernels, opts: RunnerOptions) {
    super(modelDir, opts, k);
  }
}
