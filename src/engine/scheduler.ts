// Continuous batching: every step, running sequences decode and waiting prompts prefill in
// chunks, within a per-step token budget and the KV pages each replica has free.
import type { SeqWork } from "../model/runner.ts";
import { BlockManager } from "./blocks.ts";
import type { Sequence } from "./sequence.ts";

export interface SchedulerLimits {
  maxBatchTokens: number; // tokens computed per step (decode + prefill chunks)
  maxRunning: number; // sequences in the batch at once, per replica
  maxWaiting: number; // queue bound; past it new requests are refused
}

export interface PlannedStep {
  replica: number;
  seqs: Sequence[];
  work: SeqWork[];
  samples: boolean[]; // whether each seq samples a token this step
}

export class Scheduler {
  readonly waiting: Sequence[] = [];
  readonly running: Sequence[] = [];
  readonly books: BlockManager[];

  constructor(replicas: number, pages: number, pageSize: number, readonly limits: SchedulerLimits) {
    this.books = Array.from({ length: replicas }, () => new BlockManager(pages, pageSize));
  }

  get queueFull(): boolean {
    return this.waiting.length >= this.limits.maxWaiting;
  }

  add(seq: Sequence): void {
    this.waiting.push(seq);
  }

  /** Frees a sequence's pages and forgets it. */
  drop(seq: Sequence): void {
    if (seq.replica >= 0) this.books[seq.replica].release(seq.id);
    remove(this.running, seq);
    remove(this.waiting, seq);
  }

  /** Sends a running sequence back to the queue; its cache is recomputed later. */
  preempt(seq: Sequence): void {
    this.books[seq.replica].release(seq.id);
    remove(this.running, seq);
    seq.computed = 0;
    seq.replica = -1;
    this.waiting.unshift(seq);
  }

  /** Plans one step per replica that has work. */
  plan(): PlannedStep[] {
    const steps = this.books.map((_, replica): PlannedStep => ({ replica, seqs: [], work: [], samples: [] }));
    let budget = this.limits.maxBatchTokens;
    // Decoding sequences first (one token each), then those still prefilling.
    const order = [...this.running].sort((a, b) => Number(a.pending > 1) - Number(b.pending > 1) || a.arrival - b.arrival);
    for (const seq of order) {
      if (budget <= 0) break;
      if (!this.running.includes(seq)) continue; // preempted below
      const n = Math.min(seq.pending, budget);
      if (!this.reserve(seq, n, steps)) continue;
      this.take(steps[seq.replica], seq, n);
      budget -= n;
    }
    while (budget > 0 && this.waiting.length > 0) {
      const seq = this.waiting[0];
      const replica = this.pickReplica(seq);
      if (replica < 0) break;
      seq.replica = replica;
      const n = Math.min(seq.pending, budget);
      if (!this.books[replica].grow(seq.id, seq.computed + n)) {
        seq.replica = -1;
        break;
      }
      this.waiting.shift();
      this.running.push(seq);
      this.take(steps[replica], seq, n);
      budget -= n;
    }
    return steps.filter((s) => s.seqs.length > 0);
  }

  private take(step: PlannedStep, seq: Sequence, n: number): void {
    const samples = seq.computed + n === seq.tokens.length;
    step.seqs.push(seq);
    step.samples.push(samples);
    step.work.push({
      seq: seq.id,
      tokens: seq.tokens.slice(seq.computed, seq.computed + n),
      start: seq.computed,
      pages: this.books[seq.replica].table(seq.id),
      logits: seq.req.params.prompt_logprobs && seq.computed < seq.promptLen ? "all" : undefined,
      sample: samples ? seq.sampleSpec() : undefined,
    });
  }

  /** Pages for seq to grow by n; preempts the latest arrivals of its replica when short. */
  private reserve(seq: Sequence, n: number, steps: PlannedStep[]): boolean {
    const books = this.books[seq.replica];
    const planned = steps[seq.replica].seqs;
    while (!books.grow(seq.id, seq.computed + n)) {
      const victim = this.running
        .filter((s) => s.replica === seq.replica && s !== seq && !planned.includes(s))
        .sort((a, b) => b.arrival - a.arrival)[0];
      if (!victim) return false;
      this.preempt(victim);
    }
    return true;
  }

  private pickReplica(seq: Sequence): number {
    let best = -1, bestLoad = Infinity;
    this.books.forEach((b, r) => {
      const load = this.running.filter((s) => s.replica === r).length;
      if (load >= this.limits.maxRunning || !b.canGrow(seq.id, Math.min(seq.pending, this.limits.maxBatchTokens))) return;
      if (load < bestLoad) [best, bestLoad] = [r, load];
    });
    return best;
  }
}

function remove<T>(xs: T[], x: T): void {
  const i = xs.indexOf(x);
  if (i >= 0) xs.splice(i, 1);
}
