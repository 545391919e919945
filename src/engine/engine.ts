// The engine: accepts requests as token ids, schedules them into steps on the model backend
// (continuous batching), samples, and streams token events back. Runs on the gateway's thread
// but only plans and waits: the model's work happens in the backend's actors. Running a step
// and living with its failures is the executor's (executor.ts).
import type { ModelBackend } from "./backend.ts";
import { StepExecutor } from "./executor.ts";
import { Scheduler, type SchedulerLimits } from "./scheduler.ts";
import { Sequence } from "./sequence.ts";
import {
  type ClusterState, type Engine, EngineError, type EngineHealth, type EngineStats, type GenerateRequest, type ModelInfo,
  type Preemption, type SamplingParams, type TokenEvent,
} from "./types.ts";

export interface EngineOptions extends Partial<Omit<SchedulerLimits, "speculative" | "capacity">> {
  servedModelName?: string;
  maxModelLen?: number;
  maxStepRetries?: number; // steps no host could run, per sequence, before it ends "unavailable"
  /** Speculative decoding with the model's MTP module: k draft tokens per step (the backend must
   * have been created with `mtp: true`; ignored for models without an MTP layer). A sequence whose
   * drafts keep being rejected pauses drafting (Sequence.draftTokens) unless `always`. */
  speculative?: { k: number; always?: boolean };
  log?: (msg: string) => void;
  /** Told of every sequence the scheduler preempts (serve logs it). */
  onPreempt?: (p: Preemption) => void;
}

export class ModelEngine implements Engine {
  readonly info: ModelInfo;
  private readonly sched: Scheduler;
  private loopRunning = false;
  private readonly inFlight = new Set<Sequence>(); // sequences inside the step now running
  private closed = false;
  private load: Record<number, number[]> = {};
  private loadAt = 0;
  private readonly specK: number;
  private readonly exec: StepExecutor;
  private preemptions = 0;

  constructor(readonly backend: ModelBackend, private readonly o: EngineOptions = {}) {
    const c = backend.config;
    const capacity = backend.pages * backend.pageSize;
    this.info = {
      id: o.servedModelName ?? "model",
      max_model_len: Math.min(o.maxModelLen ?? c.max_position_embeddings, c.max_position_embeddings, capacity),
      vocab_size: c.vocab_size,
      eos_token_id: c.eos_ids[0],
      bos_token_id: c.bos_token_id ?? 0,
    };
    this.specK = c.num_nextn_predict_layers > 0 ? Math.max(0, Math.floor(o.speculative?.k ?? 0)) : 0;
    this.sched = new Scheduler(backend.replicas, backend.pages, backend.pageSize, {
      speculative: this.specK,
      draftAlways: o.speculative?.always ?? false,
      capacity: this.info.max_model_len,
      maxBatchTokens: o.maxBatchTokens ?? backend.batch?.max_batch_tokens ?? 512,
      maxRunning: o.maxRunning ?? backend.batch?.max_running_seqs ?? 64,
      maxWaiting: o.maxWaiting ?? 256,
      // off unless asked (serve asks, as vLLM, unless --no-prefix-caching): engines that share one
      // backend's cache pages (tests) would otherwise reuse pages another engine has overwritten
      prefixCaching: o.prefixCaching ?? false,
    }, (replica, seq) => backend.release?.(replica, [seq]));
    this.exec = new StepExecutor(backend, this.sched, this.info.max_model_len, o);
    // Autoscaled actor kinds scale on the sequences the model has to serve (running + waiting).
    backend.scaleOn?.(() => this.sched.running.length + this.sched.waiting.length);
  }

  generate(req: GenerateRequest): AsyncIterable<TokenEvent> {
    if (this.closed) throw new EngineError("the engine is shutting down", "unavailable");
    const n = req.prompt_ids.length, max = this.info.max_model_len;
    if (n === 0) throw new EngineError("the prompt is empty", "invalid_request");
    if (n >= max) throw new EngineError(`the prompt has ${n} tokens; this model's context is ${max} tokens`, "prompt_too_long");
    for (const id of req.prompt_ids)
      if (!Number.isInteger(id) || id < 0 || id >= this.info.vocab_size)
        throw new EngineError(`token id ${id} is outside the vocabulary [0, ${this.info.vocab_size})`, "invalid_request");
    const g = req.params.constraint;
    if (g && g.vocab.size !== this.info.vocab_size)
      throw new EngineError(`the grammar was compiled for a vocabulary of ${g.vocab.size}, not ${this.info.vocab_size}`, "invalid_request");
    if (this.sched.queueFull) throw new EngineError("too many requests are waiting", "queue_full", 1);
    const seq = new Sequence(req, Math.min(req.params.max_tokens, max - n));
    if (req.signal?.aborted) seq.finish("abort");
    else {
      req.signal?.addEventListener("abort", () => this.abort(seq), { once: true });
      this.sched.add(seq);
      this.kick();
    }
    return seq.events;
  }

  private abort(seq: Sequence): void {
    if (seq.finished) return;
    seq.finish("abort");
    // Pages are freed at once unless the sequence is inside the step now running; then the loop
    // frees them after the step (finished sequences are dropped when results come back).
    if (!this.inFlight.has(seq)) this.sched.drop(seq);
  }

  private kick(): void {
    if (this.loopRunning) return;
    this.loopRunning = true;
    queueMicrotask(() => void this.loop());
  }

  private async loop(): Promise<void> {
    try {
      for (;;) {
        const before = this.sched.running.map((q) => [q, q.replica, q.computed] as const);
        const steps = this.sched.plan();
        this.notePreemptions(before);
        if (steps.length === 0) break;
        for (const s of steps) for (const q of s.seqs) this.inFlight.add(q);
        await Promise.all(steps.map((s) => this.exec.run(s)));
        this.inFlight.clear();
        await new Promise((r) => setImmediate(r)); // let HTTP handlers run between steps
      }
    } catch (e) {
      this.o.log?.(`engine loop: ${(e as Error).message}`);
    } finally {
      this.loopRunning = false;
      this.inFlight.clear();
      // Sequences left waiting for pages that a finishing sequence will free: look again soon.
      if (!this.closed && (this.sched.waiting.length || this.sched.running.length)) setTimeout(() => this.kick(), 5);
    }
  }

  /** Planning is synchronous (nothing aborts meanwhile): a sequence that was running before the plan
   * and has no replica after it was preempted by it. */
  private notePreemptions(before: readonly (readonly [Sequence, number, number])[]): void {
    for (const [seq, replica, computed] of before) {
      if (seq.replica !== -1) continue;
      this.preemptions++;
      this.o.onPreempt?.({ request_id: seq.req.id, replica, computed_tokens: computed });
    }
  }

  stats(): EngineStats {
    this.refreshLoad();
    const books = this.sched.books;
    return {
      running: this.sched.running.length,
      waiting: this.sched.waiting.length,
      kv_blocks_used: books.reduce((a, b) => a + b.used, 0),
      kv_blocks_total: books.reduce((a, b) => a + b.pages, 0),
      prompt_tokens_total: this.exec.promptTotal,
      generation_tokens_total: this.exec.genTotal,
      expert_load: this.load,
      ...(this.sched.limits.prefixCaching ? { prefix_cache_queries_total: this.sched.prefixQueries, prefix_cache_hits_total: this.sched.prefixHits } : {}),
      preemptions_total: this.preemptions,
      ...(this.specK ? { spec_drafted_total: this.exec.specDrafted, spec_accepted_total: this.exec.specAccepted } : {}),
      ...this.backend.scalingStats?.(),
    };
  }

  /** The routers' expert load is asked for at most once a second; a read returns the last answer. */
  private refreshLoad(): void {
    if (performance.now() - this.loadAt <= 1000) return;
    this.loadAt = performance.now();
    this.backend.expertLoad().then((l) => (this.load = l), () => {});
  }

  cluster(): ClusterState {
    this.refreshLoad();
    const now = this.backend.cluster?.() ?? { hosts: [], actors: [] };
    return { ...now, expert_load: this.load };
  }

  health(): EngineHealth {
    if (this.closed) return { ready: false, reason: "shutting down" };
    const hosts = this.backend.health?.() ?? { ready: true };
    if (!hosts.ready) return hosts;
    return this.exec.stepsDone > 0 ? hosts : { ready: false, reason: "the model has not run a step yet (warming up)" };
  }

  /** One token after a one-token prompt: activates every actor kind on the way and leaves the
   * traffic counters as they were. */
  async warmup(): Promise<void> {
    const params: SamplingParams = {
      temperature: 0, top_p: 1, top_k: 0, min_p: 0, presence_penalty: 0, frequency_penalty: 0, repetition_penalty: 1,
      seed: 0, max_tokens: 1, stop_token_ids: [], ignore_eos: true, logprobs: null, prompt_logprobs: false,
    };
    for await (const ev of this.generate({ id: `warmup-${crypto.randomUUID()}`, prompt_ids: [this.info.bos_token_id], params })) {
      if (ev.type !== "done") continue;
      if (ev.finish_reason === "error") throw new EngineError(`warm-up failed: ${ev.error}`, ev.error_code ?? "internal");
      this.exec.promptTotal -= ev.prompt_tokens;
      this.exec.genTotal -= ev.completion_tokens;
      if (this.sched.limits.prefixCaching) this.sched.prefixQueries -= ev.prompt_tokens; // looked up once, found nothing
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const s of [...this.sched.running, ...this.sched.waiting]) {
      s.finish("abort");
      this.sched.drop(s);
    }
    await this.backend.close();
  }
}
