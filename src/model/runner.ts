// One forward step over the sequences of a batch, as the attention side runs it: builds the
// batch, runs the Transformer (routed experts through `routed`), then hands back logits,
// hidden states or sampled tokens per sequence. Owns the KV caches of the layers it runs.
// The caches have an incarnation (a fresh id per runner): a sequence whose cache was written by
// another incarnation (a restarted or passivated actor) is refused, never continued on nothing.
import { randomUUID } from "node:crypto";
import type { Checkpoint } from "../checkpoint/checkpoint.ts";
import type { Kernels } from "../kernels/kernels.ts";
import { buildBatch } from "./batch.ts";
import type { RoutedFFN, Trace } from "./block.ts";
import type { KvDtype, LatentCache } from "./kvcache.ts";
import type { AttnImpl } from "./mla.ts";
import { MTP } from "./mtp.ts";
import type { SampleSpec, Sampled, SeqResult, SeqWork, SpecResult, SpecWork } from "../protocol.ts";
import { hasPenalties, plainGreedy, sample } from "./sampler.ts";
import { Scratch } from "./scratch.ts";
import { Transformer } from "./transformer.ts";

export type { SeqResult, SeqWork, SpecResult, SpecWork };

export interface RunnerOptions {
  pages: number;
  pageSize: number;
  impl?: AttnImpl;
  mtp?: boolean; // load the MTP layer(s) and keep their caches
  /** The latent caches' dtype (main and MTP). Default f32: the goldens are fp32 reference
   * outputs, so a runner is exact unless a caller (the CLI's --kv-cache-dtype) asks otherwise. */
  kvCacheDtype?: KvDtype;
}

export class StepRunner {
  readonly model: Transformer;
  readonly caches: LatentCache[];
  readonly mtp: MTP | null;
  readonly mtpCache: LatentCache | null;
  impl: AttnImpl;
  private readonly scratch = new Scratch();
  private ids = new Int32Array(8); // argmax outputs
  readonly incarnation = randomUUID();
  /** Sequences whose cache this runner wrote and that have not been released: live state. */
  readonly live = new Set<string>();

  constructor(ck: Checkpoint, private readonly k: Kernels, readonly opts: RunnerOptions) {
    const c = ck.config;
    this.model = new Transformer(ck, c, k);
    this.caches = this.model.newCaches(opts.pages, opts.pageSize, opts.kvCacheDtype);
    this.impl = opts.impl ?? "auto";
    const withMtp = (opts.mtp ?? false) && c.num_nextn_predict_layers > 0;
    this.mtp = withMtp ? new MTP(ck, c.num_hidden_layers, c, k, this.model.invFreq) : null;
    this.mtpCache = this.mtp ? this.mtp.newCache(opts.pages, opts.pageSize, opts.kvCacheDtype) : null;
  }

  get config() {
    return this.model.c;
  }

  /** Forgets ended sequences: their pages hold nothing anyone will read. */
  release(seqs: readonly string[]): void {
    for (const s of seqs) this.live.delete(s);
  }

  async run(work: readonly SeqWork[], routed: RoutedFFN, trace?: Trace): Promise<SeqResult[]> {
    const stale = work.map((w) => w.start > 0 && w.cache !== undefined && w.cache !== this.incarnation);
    if (stale.some(Boolean)) {
      const fresh = work.filter((_, i) => !stale[i]);
      const res = fresh.length ? await this.run(fresh, routed, trace) : [];
      let j = 0;
      return work.map((w, i) => (stale[i] ? { seq: w.seq, stale: true } : res[j++]));
    }
    for (const w of work) this.live.add(w.seq);
    const feed = work.map((w) => (w.spec?.draft?.length ? { tokens: concat(w.tokens, w.spec.draft), start: w.start, pages: w.pages } : w));
    const b = buildBatch(feed, this.opts.pageSize);
    const V = this.config.vocab_size, D = this.config.hidden_size;
    const rows: number[] = [];
    const rowAt: number[] = []; // first logits row of each seq
    const realRows: number[] = []; // rows of the real tokens (not drafts) per seq
    work.forEach((w, s) => {
      rowAt.push(rows.length);
      const first = b.cuQ[s], lastReal = first + w.tokens.length - 1;
      if (w.logits === "all" || w.targets) for (let r = first; r <= lastReal; r++) rows.push(r);
      else if (w.logits === "last" || w.sample) rows.push(lastReal);
      realRows.push(rows.length - rowAt[s]);
      if (w.sample && w.spec?.draft) for (let r = lastReal + 1; r < b.cuQ[s + 1]; r++) rows.push(r);
    });
    const spec = this.mtp !== null && work.some((w) => w.spec);
    const keepHidden = spec || work.some((w) => w.hidden);
    const res = await this.model.forward(b, this.caches, routed, { impl: this.impl, logitRows: Int32Array.from(rows), keepHidden, trace });
    const out = work.map((w, s) => {
      const r0 = rowAt[s], nRows = realRows[s];
      const o: SeqResult = { seq: w.seq, cache: this.incarnation };
      if (w.logits === "last") o.logits = res.logits.slice((r0 + nRows - 1) * V, (r0 + nRows) * V);
      else if (w.logits) o.logits = res.logits.slice(r0 * V, (r0 + nRows) * V);
      if (w.targets) o.logprobs = this.logprobsOf(res.logits.subarray(r0 * V, (r0 + nRows) * V), w.targets);
      if (w.hidden && res.hidden) o.hidden = res.hidden.slice(b.cuQ[s] * D, (b.cuQ[s] + w.tokens.length) * D);
      if (!w.sample) return o;
      // Row j (the last real token, then the drafts) gives the main model's token after draft j.
      const draft = w.spec?.draft ?? [];
      try {
        const emitted = this.verify(res.logits.subarray((r0 + nRows - 1) * V, (r0 + nRows + draft.length) * V), w.sample, draft, w.spec?.us);
        o.sampled = emitted[0];
        if (w.spec) o.spec = { emitted, draft: [] };
      } catch (e) {
        // Sampling depends on this sequence's parameters alone: its failure is its own.
        o.error = `sampling failed: ${(e as Error).message}`;
      }
      return o;
    });
    if (spec) await this.draft(work, out, b.cuQ, res.hidden!, routed);
    return out;
  }

  /** Row j's log-softmax at targets[j], for the first targets.length rows of `logits`. */
  private logprobsOf(logits: Float32Array, targets: ArrayLike<number>): Float32Array {
    const V = this.config.vocab_size, n = targets.length, out = new Float32Array(n);
    if (n === 0) return out;
    const lp = this.scratch.f32("logprobs", n * V);
    this.k.logSoftmax(lp, logits.subarray(0, n * V), n, V);
    for (let j = 0; j < n; j++) out[j] = lp[j * V + targets[j]];
    return out;
  }

  /** Samples logits row j (j = 0..draft.length) while the draws agree with the draft: accepted
   * draft tokens, then the main model's token at the first mismatch (or after the last draft).
   * A draft token is accepted when the model's own draw equals it, which keeps the target
   * distribution exactly; greedy rows without penalties, logprobs or a mask are one argmax call. */
  private verify(logits: Float32Array, spec: SampleSpec, draft: readonly number[], us?: readonly number[]): Sampled[] {
    // A grammar's mask is for the first row only: a constrained sequence does not draft (the
    // engine sends it no drafts), and any draft it were sent would be verified as rejected.
    const V = this.config.vocab_size, n = spec.mask ? 1 : draft.length + 1, emitted: Sampled[] = [];
    if (plainGreedy(spec)) {
      const ids = this.ids.length >= n ? this.ids : (this.ids = new Int32Array(n));
      this.k.argmax(ids, logits, n, V);
      for (let j = 0; j < n; j++) {
        emitted.push({ token: ids[j] });
        if (j === draft.length || ids[j] !== draft[j]) break;
      }
      return emitted;
    }
    const s = { ...spec, output: hasPenalties(spec) ? Array.from(spec.output) : spec.output };
    for (let j = 0; j < n; j++) {
      s.u = j === 0 ? spec.u : (us?.[j - 1] ?? spec.u);
      const x = sample(this.k, logits.subarray(j * V, (j + 1) * V), s);
      emitted.push(x);
      if (j === n - 1 || x.token !== draft[j]) break;
      if (hasPenalties(spec)) (s.output as number[]).push(x.token);
    }
    return emitted;
  }

  /** Runs the MTP module over the positions of this step whose next token is known, then chains it
   * to draft up to k tokens for each sequence that sampled. */
  private async draft(work: readonly SeqWork[], out: SeqResult[], cuQ: Int32Array, hidden: Float32Array, routed: RoutedFFN): Promise<void> {
    const mtp = this.mtp!, cache = this.mtpCache!, D = this.config.hidden_size, V = this.config.vocab_size, ps = this.opts.pageSize;
    let round: DraftItem[] = [];
    work.forEach((w, s) => {
      if (!w.spec) return;
      // The tokens after positions start.. of this chunk: the rest of the chunk, then the
      // emitted tokens (or the known next token of a prefill chunk).
      const emitted = out[s].spec?.emitted ?? [];
      const follow: number[] = [];
      for (let i = 1; i < w.tokens.length; i++) follow.push(w.tokens[i]);
      for (const e of emitted) follow.push(e.token);
      if (!emitted.length && w.spec.next !== undefined) follow.push(w.spec.next);
      if (!follow.length) return;
      const h = hidden.subarray(cuQ[s] * D, (cuQ[s] + follow.length) * D);
      round.push({ s, tokens: follow, start: w.start, pages: w.pages, h, want: emitted.length > 0 && w.spec.k > 0 });
    });
    while (round.length) {
      const b = buildBatch(round, ps);
      const h = round.length === 1 ? round[0].h : this.gather(round, b.cuQ, D);
      const wanted: number[] = []; // the last row of each item that drafts
      round.forEach((it, i) => { if (it.want) wanted.push(b.cuQ[i + 1] - 1); });
      const R = wanted.length;
      const r = await mtp.forward(b, h, cache, routed, Int32Array.from(wanted), this.impl, true);
      const ids = this.ids.length >= R ? this.ids : (this.ids = new Int32Array(R));
      if (R) this.k.argmax(ids, r.logits, R, V);
      const next: DraftItem[] = [];
      let li = 0;
      for (const it of round) {
        if (!it.want) continue;
        const d = out[it.s].spec!.draft, id = ids[li++];
        d.push(id);
        const pos = it.start + it.tokens.length; // the MTP position of the next chained draft
        if (d.length < work[it.s].spec!.k && pos < it.pages.length * ps)
          next.push({ ...it, tokens: [id], start: pos, h: r.hidden.slice((li - 1) * D, li * D) });
      }
      round = next;
    }
  }

  /** The MTP inputs of several sequences, gathered into one [T, D] block. */
  private gather(round: readonly DraftItem[], cuQ: Int32Array, D: number): Float32Array {
    const h = this.scratch.f32("mtpIn", cuQ[round.length] * D);
    round.forEach((it, i) => h.set(it.h, cuQ[i] * D));
    return h;
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
    return (await this.mtp.forward(b, h, this.mtpCache, routed, rows, this.impl)).logits.slice();
  }
}

/** One sequence's share of an MTP round: `tokens` at positions start.., from the hidden states h. */
interface DraftItem {
  s: number; // index into the step's work
  tokens: number[];
  start: number;
  pages: ArrayLike<number>;
  h: Float32Array; // [tokens.length, D]
  want: boolean; // draft from the last row
}

function concat(a: ArrayLike<number>, b: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < a.length; i++) out.push(a[i]);
  for (const x of b) out.push(x);
  return out;
}
