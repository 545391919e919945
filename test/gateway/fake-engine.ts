// A small deterministic Engine for the gateway tests: it "generates" a fixed token script, honours
// abort, max_tokens, stop_token_ids, ignore_eos, seed and logprobs, keeps a bounded queue (429s), and
// records what it was asked and what was aborted. Timing is controlled by `stepMs`.
import { seededRandom } from "../../src/engine/sequence.ts";
import { EngineError, type Engine, type EngineHealth, type EngineStats, type GenerateRequest, type ModelInfo, type TokenEvent, type TopLogprob } from "../../src/engine/types.ts";

export interface FakeEngineOptions {
  script: number[]; // greedy output, in order; EOS follows it unless ignore_eos (then it loops)
  info?: Partial<ModelInfo>;
  stepMs?: number; // delay between tokens
  maxRunning?: number;
  maxWaiting?: number;
  refuse?: EngineError; // every request is refused with this
  failAfterTokens?: number; // sequences end with finish_reason "error" after this many tokens
  error?: string; // the error text of those sequences (default "boom")
  errorCode?: EngineError["code"]; // and their error_code (default none)
}

const mulberry32 = seededRandom;

export class FakeEngine implements Engine {
  readonly info: ModelInfo;
  readonly requests: GenerateRequest[] = [];
  readonly aborted: string[] = [];
  readonly finished: string[] = [];
  private running = new Map<string, number>(); // id -> tokens held in KV
  private waiters: (() => void)[] = [];
  private expertLoad: Record<number, number[]> = { 1: new Array(4).fill(0), 2: new Array(4).fill(0) };
  private promptTotal = 0;
  private genTotal = 0;

  constructor(private readonly opts: FakeEngineOptions) {
    this.info = { id: "fake-dsv3", max_model_len: 256, vocab_size: 4096, eos_token_id: 1, bos_token_id: 0, ...opts.info };
  }

  async *generate(req: GenerateRequest): AsyncGenerator<TokenEvent> {
    this.requests.push(req);
    if (this.opts.refuse) throw this.opts.refuse;
    if (req.prompt_ids.length >= this.info.max_model_len) throw new EngineError("prompt too long", "prompt_too_long");
    await this.admit(req.signal);
    if (req.signal?.aborted) {
      this.aborted.push(req.id);
      yield { type: "done", finish_reason: "abort", prompt_tokens: req.prompt_ids.length, completion_tokens: 0 };
      return;
    }
    this.running.set(req.id, req.prompt_ids.length);
    this.promptTotal += req.prompt_ids.length;
    let outcome: "done" | "aborted" = "aborted";
    try {
      for (const ev of this.events(req)) {
        if (ev.type === "token") await this.step(req.signal);
        if (req.signal?.aborted) break;
        if (ev.type === "token") this.account(req.id, ev.id);
        if (ev.type === "done") outcome = "done";
        yield ev;
        if (req.signal?.aborted) break;
      }
      if (outcome === "aborted") yield { type: "done", finish_reason: "abort", prompt_tokens: req.prompt_ids.length, completion_tokens: 0 };
    } finally {
      (outcome === "done" ? this.finished : this.aborted).push(req.id);
      this.running.delete(req.id);
      this.waiters[0]?.();
    }
  }

  private *events(req: GenerateRequest): Generator<TokenEvent> {
    const p = req.params;
    const { script } = this.opts;
    const rng = p.temperature > 0 ? (p.seed !== null ? mulberry32(p.seed) : Math.random) : null;
    if (p.prompt_logprobs) yield { type: "prompt", logprobs: req.prompt_ids.map((_, i) => (i === 0 ? null : -1 - (i % 3))) };
    for (let i = 0; ; i++) {
      let id = rng ? script[Math.floor(rng() * script.length)]! : script[i % script.length]!;
      if (!rng && i === script.length && !p.ignore_eos) id = this.info.eos_token_id;
      if (this.opts.failAfterTokens !== undefined && i >= this.opts.failAfterTokens) {
        yield { type: "done", finish_reason: "error", prompt_tokens: req.prompt_ids.length, completion_tokens: i, error: this.opts.error ?? "boom",
          ...(this.opts.errorCode ? { error_code: this.opts.errorCode } : {}) };
        return;
      }
      yield { type: "token", id, ...this.logprobs(id, i, p.logprobs) };
      const stop = (id === this.info.eos_token_id && !p.ignore_eos) || p.stop_token_ids.includes(id);
      if (stop || i + 1 >= p.max_tokens) {
        yield { type: "done", finish_reason: stop ? "stop" : "length", prompt_tokens: req.prompt_ids.length, completion_tokens: i + 1 };
        return;
      }
    }
  }

  private logprobs(id: number, i: number, k: number | null): { logprob?: number; top_logprobs?: TopLogprob[] } {
    if (k === null) return {};
    const logprob = -0.25 * ((i % 4) + 1);
    const top = Array.from({ length: k }, (_, j) => ({ id: j === 0 ? id : (id + j) % this.info.vocab_size, logprob: logprob - j }));
    return { logprob, top_logprobs: top };
  }

  private account(id: string, token: number): void {
    this.genTotal += 1;
    this.running.set(id, (this.running.get(id) ?? 0) + 1);
    for (const load of Object.values(this.expertLoad)) load[token % load.length]! += 1;
  }

  private async admit(signal: AbortSignal | undefined): Promise<void> {
    const max = this.opts.maxRunning ?? Infinity;
    if (this.running.size < max) return;
    if (this.waiters.length >= (this.opts.maxWaiting ?? Infinity)) throw new EngineError("queue full", "queue_full", 2);
    await new Promise<void>((resolve) => {
      const wake = () => {
        const i = this.waiters.indexOf(wake);
        if (i >= 0) this.waiters.splice(i, 1);
        resolve();
      };
      this.waiters.push(wake);
      signal?.addEventListener("abort", wake, { once: true });
    });
  }

  private step(signal: AbortSignal | undefined): Promise<void> {
    const ms = this.opts.stepMs ?? 0;
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        signal?.removeEventListener("abort", done);
        resolve();
      }
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  stats(): EngineStats {
    const blocks = [...this.running.values()].reduce((s, n) => s + Math.ceil(n / 16), 0);
    return {
      running: this.running.size,
      waiting: this.waiters.length,
      kv_blocks_used: blocks,
      kv_blocks_total: 64,
      prompt_tokens_total: this.promptTotal,
      generation_tokens_total: this.genTotal,
      expert_load: this.expertLoad,
      spec_drafted_total: this.genTotal,
      spec_accepted_total: Math.floor(this.genTotal * 0.8),
    };
  }

  /** What health() answers; tests flip it to play a model that is loading or has lost a host. */
  healthState: EngineHealth = { ready: true };

  health(): EngineHealth {
    return this.healthState;
  }

  async close(): Promise<void> {}
}
