// One request's sequence: its tokens, how many of them the cache holds, its sampling state, and
// the queue through which its events reach the caller.
import { type SampleSpec, hasPenalties } from "../model/sampler.ts";
import type { FinishReason, GenerateRequest, TokenEvent } from "./types.ts";

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

export class Sequence {
  readonly tokens: number[]; // prompt then output
  readonly promptLen: number;
  computed = 0; // positions already in the KV cache
  replica = -1;
  failures = 0;
  draft: number[] = []; // speculative decoding: tokens the MTP module drafted for the next step
  finished: FinishReason | null = null;
  readonly events = new EventQueue<TokenEvent>();
  readonly promptLogprobs: (number | null)[] = [];
  private readonly rand: () => number;
  readonly arrival = performance.now();

  constructor(readonly req: GenerateRequest, readonly maxTokens: number) {
    this.tokens = [...req.prompt_ids];
    this.promptLen = req.prompt_ids.length;
    this.rand = seededRandom(req.params.seed ?? Math.floor(Math.random() * 2 ** 32));
  }

  get id(): string {
    return this.req.id;
  }
  get outputLen(): number {
    return this.tokens.length - this.promptLen;
  }
  /** Tokens not yet in the cache; the last one is fed to produce the next token. */
  get pending(): number {
    return this.tokens.length - this.computed;
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
    return s;
  }

  finish(reason: FinishReason, error?: string): void {
    if (this.finished) return;
    this.finished = reason;
    this.events.push({ type: "done", finish_reason: reason, prompt_tokens: this.promptLen, completion_tokens: this.outputLen, error });
    this.events.close();
  }
}
