// The model on the calling thread, no actors: gate and experts local. Used by tools that want
// the plain forward pass, and as the reference the actor placements are compared against.
import { openCheckpoint } from "../checkpoint/checkpoint.ts";
import { type Kernels, cpuKernels } from "../kernels/kernels.ts";
import { LocalMoE } from "../model/moe.ts";
import { type RunnerOptions, StepRunner } from "../model/runner.ts";
import type { ModelBackend, SeqResult, SeqWork } from "./backend.ts";

export class DirectBackend implements ModelBackend {
  readonly runner: StepRunner;
  readonly moe: LocalMoE;
  readonly replicas: number = 1;
  private readonly load = new Map<number, Float64Array>();

  /** `k`: the kernels to run on (default the CPU library; tests pass device kernels). */
  constructor(modelDir: string, opts: RunnerOptions, k: Kernels = cpuKernels()) {
    const ck = openCheckpoint(modelDir);
    this.runner = new StepRunner(ck, k, opts);
    this.moe = new LocalMoE(ck, ck.config, k);
    this.moe.onRouting = (layer, r) => {
      let l = this.load.get(layer);
      if (!l) this.load.set(layer, (l = new Float64Array(ck.config.n_routed_experts)));
      for (let i = 0; i < r.ids.length; i++) l[r.ids[i]]++;
    };
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
    try {
      return await this.runner.mtpLogits("mtp", tokens, r.hidden!, pages, this.moe.routed);
    } finally {
      this.runner.release(["mtp"]);
    }
  }

  release(_replica: number, seqs: string[]): void {
    this.runner.release(seqs);
  }

  async expertLoad(): Promise<Record<number, number[]>> {
    return Object.fromEntries([...this.load].map(([l, v]) => [l, Array.from(v)]));
  }

  async close(): Promise<void> {}
}
