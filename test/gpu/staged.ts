// The model's own forward pass (StepRunner, LocalMoE) run through a device library via the staged
// Kernels of src/kernels/staged.ts. Slow, but it checks every kernel the forward uses, on the real
// fixture weights, against the goldens. The device-resident forward for benchmarks is forward.ts.
import { openCheckpoint } from "../../src/checkpoint/checkpoint.ts";
import type { ModelBackend, SeqResult, SeqWork } from "../../src/engine/backend.ts";
import type { Kernels } from "../../src/kernels/kernels.ts";
import { LocalMoE } from "../../src/model/moe.ts";
import { type RunnerOptions, StepRunner } from "../../src/model/runner.ts";

export { stagedKernels } from "../../src/kernels/staged.ts";

/** The direct backend (src/engine/direct.ts) with the device kernels in place of the CPU's. */
export class StagedBackend implements ModelBackend {
  readonly runner: StepRunner;
  readonly moe: LocalMoE;
  readonly replicas = 1;

  constructor(modelDir: string, k: Kernels, opts: RunnerOptions) {
    const ck = openCheckpoint(modelDir);
    this.runner = new StepRunner(ck, k, opts);
    this.moe = new LocalMoE(ck, ck.config, k);
  }
  get config() {
    return this.runner.config;
  }
  get pageSize() {
    return this.runner.opts.pageSize;
  }
  get pages() {
    return this.runner.opts.pages;
  }
  step(_replica: number, work: SeqWork[]): Promise<SeqResult[]> {
    return this.runner.run(work, this.moe.routed);
  }
  async mtpLogits(tokens: number[], pages: number[]): Promise<Float32Array> {
    const [r] = await this.runner.run([{ seq: "mtp", tokens, start: 0, pages, hidden: true }], this.moe.routed);
    return this.runner.mtpLogits("mtp", tokens, r.hidden!, pages, this.moe.routed);
  }
  async expertLoad(): Promise<Record<number, number[]>> {
    return {};
  }
  async close(): Promise<void> {}
}
