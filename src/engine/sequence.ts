// One request's sequence: its tokens, how many of them the cache holds, its sampling state, and
// the queue through which its events reach the caller.
import { type Matcher, maskWords } from "../grammar/index.ts";
import { hasPenalties } from "../model/sampler.ts";
import type { SampleSpec } from "../protocol.ts";
import type { EngineError, FinishReason, GenerateRequest, TokenEvent } from "./types.ts";

/** Adaptive speculation: the acceptance of a sequence's recent drafts (counts decayed by DECAY per
 * verify step). Below PAUSE_BELOW, drafting costs more than it saves (a rejected draft still pays
 * for the MTP module and a wider verify step), so the sequence stops drafting (its MTP cache still
 * follows every position, at one kv projection per token) and now and then drafts one token to see
 * whether acceptance came back (repetitive text, a change of topic): after PROBE_FIRST steps, then
 * twice as long after each rejected probe (up to PROBE_MAX); an accepted probe resumes drafting. */
const DECAY = 0.7, PAUSE_BELOW = 0.3, MIN_EVIDENCE = 2, PROBE_FIRST = 16, PROBE_MAX = 128;

/** A small seeded generator (mulberry32): the same seed draws the same numbers. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A single-consumer async queue of events. */
export class EventQueue<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private waiter: ((v: IteratorResult<T>) => void) | null = null;
  private closed = false;

  push(v: T): void {
    if (this.closed) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w({ value: v, done: false });
    } else this.items.push(v);
  }

  close(): void {
    this.closed = true;
    if (this.waiter) this.waiter({ value: undefined as never, done: true });
    this.waiter = null;
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.items.length) return Promise.resolve({ value: this.items.shift() as T, done: false });
        if (this.closed) return Promise.resolve({ value: undefined as never, done: true });
        return new Promise((resolve) => (this.waiter = resolve));
      },
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined as never, done: true });
      },
    };
  }
}

let created = 0;

export class Sequence {
  /** Its name in the block books and step messages: unique even when callers reuse request ids
   * (two requests with one x-request-id must not share a cache). */
  readonly id: string;
  readonly tokens: number[]; // prompt then output
  readonly promptLen: number;
  computed = 0; // positions already in the KV cache
  replica = -1;
  failures = 0; // failed steps since the last one that went through
  recomputes = 0; // times its cache was found lost and recomputed
  cachedTokens = 0; // prompt positions its prefill found in the prefix cache (usage's cached_tokens)
  cache: string | undefined; // the cache incarnation holding positions 0..computed-1
  draft: number[] = []; // speculative decoding: tokens the MTP module drafted for the next step
  private specDrafted = 0; // decayed counts of verified drafts and accepted ones
  private specAccepted = 0;
  private paused = 0; // steps since the last probe while paused
  private probeEvery = PROBE_FIRST;
  private probing = false; // the drafts being verified are a probe
  finished: FinishReason | null = null;
  readonly events = new EventQueue<TokenEvent>();
  readonly promptLogprobs: (number | null)[] = [];
  private readonly rand: () => number;
  readonly arrival = performance.now();
  /** Where the output stands in its grammar (constrained decoding), else null. */
  readonly matcher: Matcher | null;
  constraintError: string | null = null; // the grammar threw while making this step's mask

  constructor(readonly req: GenerateRequest, readonly maxTokens: number) {
    this.id = `${req.id}~${(created++).toString(36)}`;
    this.tokens = [...req.prompt_ids];
    this.promptLen = req.prompt_ids.length;
    this.rand = seededRandom(req.params.seed ?? Math.floor(Math.random() * 2 ** 32));
    this.matcher = req.params.constraint?.start() ?? null;
  }

  get outputLen(): number {
    return this.tokens.length - this.promptLen;
  }
  /** Tokens not yet in the cache; the last one is fed to produce the next token. */
  get pending(): number {
    return this.tokens.length - this.computed;
  }

  /** Draft tokens to ask the MTP module for after this step: k; while paused 0, or 1 to probe. */
  draftTokens(k: number): number {
    if (this.matcher) return 0; // a draft would need the mask of every position it covers
    if (this.specDrafted < MIN_EVIDENCE || this.specAccepted >= PAUSE_BELOW * this.specDrafted) return k;
    if (++this.paused < this.probeEvery) return 0;
    this.paused = 0;
    this.probing = true;
    return Math.min(k, 1);
  }

  /** A verify step's outcome: `accepted` of `drafted` draft tokens. */
  noteDrafts(drafted: number, accepted: number): void {
    if (drafted === 0) return;
    if (this.probing) {
      this.probing = false;
      if (accepted === 0) this.probeEvery = Math.min(2 * this.probeEvery, PROBE_MAX);
      else [this.specDrafted, this.specAccepted, this.probeEvery] = [0, 0, PROBE_FIRST]; // fresh evidence
      return;
    }
    this.specDrafted = this.specDrafted * DECAY + drafted;
    this.specAccepted = this.specAccepted * DECAY + accepted;
  }

  /** n more uniform draws (rows after the first in a speculative step). */
  uniforms(n: number): number[] {
    return Array.from({ length: n }, () => this.rand());
  }

  sampleSpec(): SampleSpec {
    const p = this.req.params;
    const s: SampleSpec = {
      temperature: p.temperature, top_p: p.top_p, top_k: p.top_k, min_p: p.min_p,
      presence_penalty: p.presence_penalty, frequency_penalty: p.frequency_penalty,
      repetition_penalty: p.repetition_penalty, u: this.rand(), logprobs: p.logprobs, output: [],
    };
    // The generated tokens and the prompt are read only by the penalties: not copied without them.
    if (hasPenalties(s)) s.output = this.tokens.slice(this.promptLen);
    if (p.repetition_penalty !== 1) s.prompt = this.tokens.slice(0, this.promptLen);
    if (this.matcher) {
      // Within the tokens left, so that a bounded grammar closes by max_tokens; one that cannot
      // (its shortest output is longer) is followed as far as it goes and ends "length".
      const mask = new Uint32Array(maskWords(this.matcher.grammar.vocab.size));
      try {
        this.matcher.fill(mask, this.maxTokens - this.outputLen);
        if (mask.every((w) => w === 0)) this.matcher.fill(mask);
      } catch (e) {
        // this sequence's own failure: the step planner must not throw for its neighbours
        this.constraintError = `the grammar failed: ${(e as Error).message}`;
        mask.fill(0xffffffff);
      }
      s.mask = mask;
    }
    return s;
  }

  /** `code` classifies an error for the gateway ("unavailable": no host could run it, 503). */
  finish(reason: FinishReason, error?: string, code?: EngineError["code"]): void {
    if (this.finished) return;
    this.finished = reason;
    this.events.push({
      type: "done", finish_reason: reason, prompt_tokens: this.promptLen, completion_tokens: this.outputLen,
      ...(this.cachedTokens ? { cached_tokens: this.cachedTokens } : {}),
      ...(error !== undefined ? { error, error_code: code ?? "internal" } : {}),
    });
    this.events.close();
  }
}
