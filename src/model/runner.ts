// One forward step over the sequences of a batch, as the attention side runs it: builds the
// batch, runs the Transformer (routed experts through `routed`), then hands back logits,
// hidden states or sampled tokens per sequence. Owns the KV caches of the layers it runs.
import type { Checkpoint } from "../checkpoint/checkpoint.ts";
import type { Kernels } from "../kernels/kernels.ts";
import { buildBatch } from "./batch.ts";
import type { RoutedFFN, Trace } from "./block.ts";
import type { LatentCache } from "./kvcache.ts";
import type { AttnImpl } from "./mla.ts";
import { MTP } from "./mtp.ts";
import { type SampleSpec, type Sampled, sample } from "./sampler.ts";
import { Transformer } from "./transformer.ts";

export interface SeqWork {
  seq: string;
  tokens: ArrayLike<number>; // fed this step, at positions start..
  start: number;
  pages: ArrayLike<number>; // the sequence's cache pages (from the engine's block books)
  logits?: "last" | "all"; // return raw logits of these rows
  hidden?: boolean; // return the final hidden states (after model.norm) of every row
  sample?: SampleSpec; // sample the next token from the last row
}

export interface SeqResult {
  seq: string;
  logits?: Float32Array; // [rows, vocab]
  hidden?: Float32Array; // [n, D]
  sampled?: Sampled;
}

export interface RunnerOptions {
  pages: number;
  pageSize: number;
  impl?: AttnImpl;
  mtp?: boolean; // load the MTP layer(s) and keep their caches
}

export class StepRunner {
  readonly model: Transformer;
  readonly caches: LatentCache[];
  readonly mtp: MTP | null;
  readonly mtpCache: LatentCache | null;
  impl: AttnImpl;

  constructor(ck: Checkpoint, private readonly k: Kernels, readonly opts: RunnerOptions) {
    const c = ck.config;
    this.model = new Transformer(ck, c, k);
    this.caches = this.model.newCaches(opts.pages, opts.pageSize);
    this.impl = opts.impl ?? "auto";
    const withMtp = (opts.mtp ?? false) && c.num_nextn_predict_layers > 0;
    this.mtp = withMtp ? new MTP(ck, c.num_hidden_layers, c, k, this.model.invFreq) : null;
    this.mtpCache = this.mtp ? this.mtp.newCache(opts.pages, opts.pageSize) : null;
  }

  get config() {
    return this.model.c;
  }

  async run(work: readonly SeqWork[], routed: RoutedFFN, trace?: Trace): Promise<SeqResult[]> {
    const b = buildBatch(work, this.opts.pageSize);
    const V = this.config.vocab_size, D = this.config.hidden_size;
    const rows: number[] = [];
    const rowAt: number[] = []; // first logits row of each seq
    work.forEach((w, s) => {
      rowAt.push(rows.length);
      const last = b.cuQ[s + 1] - 1;
      if (w.logits === "all") for (let r = b.cuQ[s]; r <= last; r++) rows.push(r);
      else if (w.logits === "last" || w.sample) rows.push(last);
    });
    const keepHidden = work.some((w) => w.hidden);
    const res = await this.model.forward(b, this.caches, routed, { impl: this.impl, logitRows: Int32Array.from(rows), keepHidden, trace });
    return work.map((w, s) => {
      const n = b.cuQ[s + 1] - b.cuQ[s];
      const r0 = rowAt[s], nRows = w.logits === "all" ? n : w.logits === "last" || w.sample ? 1 : 0;
      const logits = res.logits.subarray(r0 * V, (r0 + nRows) * V);
      const out: SeqResult = { seq: w.seq };
      if (w.logits) out.logits = logits.slice();
      if (w.hidden && res.hidden) out.hidden = res.hidden.slice(b.cuQ[s] * D, b.cuQ[s + 1] * D);
      if (w.sample) out.sampled = sample(this.k, logits.subarray((nRows - 1) * V), w.sample);
      return out;
    });
  }

  /** MTP logits for one sequence: row i (i < n-1) predicts token i+2 from h_i and t_{i+1}.
   * The MTP cache holds positions 0..n-2 of this sequence's pages. */
  async mtpLogits(seq: string, tokens: ArrayLike<number>, hidden: Float32Array, pages: ArrayLike<number>, routed: RoutedFFN): Promise<Float32Array> {
    if (!this.mtp || !this.mtpCache) throw new Error("this model was loaded without its MTP layer");
    const n = tokens.length - 1;
    const next = Array.from({ length: n }, (_, i) => tokens[i + 1]);
    const b = buildBatch([{ tokens: next, start: 0, pages }], this.opts.pageSize);
    const rows = Int32Array.from({ length: n }, (_, i) => i);
    const h = hidden.subarray(0, n * this.config.hidden_size);
    void seq;
    return (await this.mtp.forward(b, h, this.mtpCache, routed, rows, this.impl)).logits;
  }
}
