// Continuous batching: every step, running sequences decode and waiting prompts prefill in
// chunks, within a per-step token budget and the KV pages each replica has free. With prefix
// caching a new sequence starts from the cached full pages its tokens begin with (its first step
// computes only the rest) and offers its own full pages to the cache as they are written.
import type { SeqWork } from "../protocol.ts";
import { BlockManager } from "./blocks.ts";
import { KeyChain } from "./prefix-cache.ts";
import type { Sequence } from "./sequence.ts";

export interface SchedulerLimits {
  maxBatchTokens: number; // tokens computed per step (decode + prefill chunks)
  maxRunning: number; // sequences in the batch at once, per replica
  maxWaiting: number; // queue bound; past it new requests are refused
  speculative?: number; // draft tokens per step (MTP speculative decoding); 0 / absent = off
  draftAlways?: boolean; // draft every step, even while drafts keep being rejected (tests)
  capacity?: number; // cache positions a sequence may reach (for speculative page reservations)
  prefixCaching?: boolean; // share full KV pages between sequences by their tokens (default off)
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
  /** Prefix caching, as vLLM counts it: tokens looked up at admission, and those found cached. */
  prefixQueries = 0;
  prefixHits = 0;
  private readonly chains = new WeakMap<Sequence, KeyChain>();

  /** `onRelease`: a sequence left its replica's cache (finished or preempted), so the attention
   * actor there can stop counting it as live state. */
  constructor(replicas: number, pages: number, pageSize: number, readonly limits: SchedulerLimits,
              private readonly onRelease?: (replica: number, seq: string) => void) {
    this.books = Array.from({ length: replicas }, () => new BlockManager(pages, pageSize, limits.prefixCaching ?? false));
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
      const hit = this.lookup(seq, replica);
      seq.computed = hit.pages.length * this.books[replica].pageSize;
      const n = Math.min(seq.pending, budget);
      if (!this.books[replica].grow(seq.id, this.reach(seq, n, 0), hit.pages)) {
        [seq.replica, seq.computed] = [-1, 0];
        break;
      }
      seq.cache = hit.cache;
      if (seq.outputLen === 0) seq.cachedTokens = seq.computed;
      if (this.limits.prefixCaching && !seq.req.params.prompt_logprobs) {
        this.prefixQueries += seq.tokens.length;
        this.prefixHits += seq.computed;
      }
      this.waiting.shift();
      this.running.push(seq);
      this.take(steps[replica], seq, n);
      budget -= n;
    }
    return steps.filter((s) => s.seqs.length > 0);
  }

  /** After a step wrote seq's cache (incarnation `cache`) up to seq.computed: its full pages go to
   * the cache. `extra`: tokens the step produced that seq.tokens does not hold yet. */
  offerPages(seq: Sequence, cache: string | undefined, extra: readonly number[] = []): void {
    if (!this.limits.prefixCaching || seq.replica < 0 || cache === undefined) return;
    const at = this.tokenAt(seq, extra);
    this.books[seq.replica].offer(seq.id, this.chain(seq), at, seq.computed, seq.tokens.length + extra.length, cache, !!this.limits.speculative);
  }

  /** The cached pages seq may start from on `replica`. A request for prompt logprobs computes every
   * prompt position (their logits are what it asked for), so it starts from none. */
  private lookup(seq: Sequence, replica: number): { pages: number[]; cache: string | undefined } {
    if (!this.limits.prefixCaching || seq.req.params.prompt_logprobs) return { pages: [], cache: undefined };
    // with speculation the MTP cache's last row of a page depends on the token after it
    return this.books[replica].lookup(this.chain(seq), this.tokenAt(seq), seq.tokens.length, !!this.limits.speculative);
  }

  private chain(seq: Sequence): KeyChain {
    let c = this.chains.get(seq);
    if (!c) this.chains.set(seq, (c = new KeyChain(this.books[0].pageSize)));
    return c;
  }

  private tokenAt(seq: Sequence, extra: readonly number[] = []): (pos: number) => number {
    const t = seq.tokens;
    return (pos) => (pos < t.length ? t[pos] : extra[pos - t.length]);
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

  /** The least loaded replica that can take seq; among equally loaded ones, the one that has the
   * most of its prefix cached (a page is cached in one replica's cache only). */
  private pickReplica(seq: Sequence): number {
    let best = -1, bestLoad = Infinity, bestHit = -1;
    this.books.forEach((b, r) => {
      const load = this.running.filter((s) => s.replica === r).length;
      if (load >= this.limits.maxRunning || load > bestLoad || !b.canGrow(seq.id, Math.min(seq.pending, this.limits.maxBatchTokens))) return;
      const hit = this.books.length > 1 ? this.lookup(seq, r).pages.length : 0;
      if (load < bestLoad || hit > bestHit) [best, bestLoad, bestHit] = [r, load, hit];
    });
    return best;
  }
}

function remove<T>(xs: T[], x: T): void {
  const i = xs.indexOf(x);
  if (i >= 0) xs.splice(i, 1);
}
