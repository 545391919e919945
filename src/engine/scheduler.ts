// Continuous batching: every step, running sequences decode and waiting prompts prefill in
// chunks, within a per-step token budget and the KV pages each replica has free.
import type { SeqWork } from "../protocol.ts";
import { BlockManager } from "./blocks.ts";
import type { Sequence } from "./sequence.ts";

export interface SchedulerLimits {
  maxBatchTokens: number; // tokens computed per step (decode + prefill chunks)
  maxRunning: number; // sequences in the batch at once, per replica
  maxWaiting: number; // queue bound; past it new requests are refused
  speculative?: number; // draft tokens per step (MTP speculative decoding); 0 / absent = off
  draftAlways?: boolean; // draft every step, even while drafts keep being rejected (tests)
  capacity?: number; // cache positions a sequence may reach (for speculative page reservations)
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

  /** `onRelease`: a sequence left its replica's cache (finished or preempted), so the attention
   * actor there can stop counting it as live state. */
  constructor(replicas: number, pages: number, pageSize: number, readonly limits: SchedulerLimits,
              private readonly onRelease?: (replica: number, seq: string) => void) {
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
    if (seq.replica >= 0) {
      this.books[seq.replica].release(seq.id);
      this.onRelease?.(seq.replica, seq.id);
      seq.replica = -1;
    }
    remove(this.running, seq);
    remove(this.waiting, seq);
  }

  /** Sends a running sequence back to the queue; its cache is recomputed later. */
  preempt(seq: Sequence): void {
    if (seq.replica >= 0) {
      this.books[seq.replica].release(seq.id);
      this.onRelease?.(seq.replica, seq.id);
    }
    remove(this.running, seq);
    seq.computed = 0;
    seq.cache = undefined;
    seq.draft = [];
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
      const d = this.draftFor(seq, n, budget);
      if (!this.reserve(seq, this.reach(seq, n, d.length), steps)) continue;
      this.take(steps[seq.replica], seq, n, d);
      budget -= n + d.length;
    }
    while (budget > 0 && this.waiting.length > 0) {
      const seq = this.waiting[0];
      const replica = this.pickReplica(seq);
      if (replica < 0) break;
      seq.replica = replica;
      const n = Math.min(seq.pending, budget);
      if (!this.books[replica].grow(seq.id, this.reach(seq, n, 0))) {
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

  /** The drafted tokens a decoding sequence verifies this step (within budget, cache and max_tokens). */
  private draftFor(seq: Sequence, n: number, budget: number): number[] {
    if (!this.limits.speculative || seq.computed + n !== seq.tokens.length) return [];
    const room = Math.min(budget - n, seq.maxTokens - seq.outputLen - 1, (this.limits.capacity ?? Infinity) - seq.tokens.length);
    return seq.draft.slice(0, Math.max(0, room));
  }

  /** Cache positions a step of n tokens (+ d drafts) touches: with speculation, the MTP module's
   * chained drafts reach k - 1 positions past the last accepted one. */
  private reach(seq: Sequence, n: number, d: number): number {
    const k = this.limits.speculative ?? 0;
    if (!k || seq.computed + n !== seq.tokens.length) return seq.computed + n + d;
    return Math.max(seq.computed + n + d, Math.min(seq.computed + n + d + k - 1, this.limits.capacity ?? Infinity));
  }

  private take(step: PlannedStep, seq: Sequence, n: number, draft: number[] = []): void {
    const samples = seq.computed + n === seq.tokens.length;
    const k = this.limits.speculative ?? 0;
    step.seqs.push(seq);
    step.samples.push(samples);
    step.work.push({
      seq: seq.id,
      tokens: seq.tokens.slice(seq.computed, seq.computed + n),
      start: seq.computed,
      pages: this.books[seq.replica].table(seq.id),
      cache: seq.computed > 0 ? seq.cache : undefined,
      // Prompt logprobs are computed where the logits are: only the O(n) numbers come back.
      targets: seq.req.params.prompt_logprobs && seq.computed < seq.promptLen
        ? seq.tokens.slice(seq.computed + 1, Math.min(seq.computed + n + 1, seq.promptLen)) : undefined,
      sample: samples ? seq.sampleSpec() : undefined,
      spec: k ? {
        k: this.limits.draftAlways ? k : seq.draftTokens(k), draft: draft.length ? draft : undefined,
        next: samples ? undefined : seq.tokens[seq.computed + n],
        us: draft.length && seq.req.params.temperature > 0 ? seq.uniforms(draft.length) : undefined,
      } : undefined,
    });
  }

  /** Pages for seq to grow by n; preempts the latest arrivals of its replica when short. */
  private reserve(seq: Sequence, tokens: number, steps: PlannedStep[]): boolean {
    const books = this.books[seq.replica];
    const planned = steps[seq.replica].seqs;
    while (!books.grow(seq.id, tokens)) {
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
