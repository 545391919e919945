// The engine: accepts requests as token ids, schedules them into steps on the model backend
// (continuous batching), samples, and streams token events back. Runs on the gateway's thread
// but only plans and waits: the model's work happens in the backend's actors.
import type { ModelBackend } from "./backend.ts";
import { Scheduler, type SchedulerLimits, type PlannedStep } from "./scheduler.ts";
import { Sequence } from "./sequence.ts";
import {
  type Engine, EngineError, type EngineStats, type GenerateRequest, type ModelInfo, type TokenEvent,
} from "./types.ts";

export interface EngineOptions extends Partial<Omit<SchedulerLimits, "speculative" | "capacity">> {
  servedModelName?: string;
  maxModelLen?: number;
  maxStepRetries?: number;
  /** Speculative decoding with the model's MTP module: k draft tokens per step (the backend must
   * have been created with `mtp: true`; ignored for models without an MTP layer). A sequence whose
   * drafts keep being rejected pauses drafting (Sequence.draftTokens) unless `always`. */
  speculative?: { k: number; always?: boolean };
  log?: (msg: string) => void;
}

export class ModelEngine implements Engine {
  readonly info: ModelInfo;
  private readonly sched: Scheduler;
  private loopRunning = false;
  private readonly inFlight = new Set<Sequence>(); // sequences inside the step now running
  private closed = false;
  private promptTotal = 0;
  private genTotal = 0;
  private load: Record<number, number[]> = {};
  private loadAt = 0;
  private readonly specK: number;
  private specDrafted = 0;
  private specAccepted = 0;

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
    });
  }

  generate(req: GenerateRequest): AsyncIterable<TokenEvent> {
    if (this.closed) throw new EngineError("the engine is shutting down", "unavailable");
    const n = req.prompt_ids.length, max = this.info.max_model_len;
    if (n === 0) throw new EngineError("the prompt is empty", "invalid_request");
    if (n >= max) throw new EngineError(`the prompt has ${n} tokens; this model's context is ${max} tokens`, "prompt_too_long");
    for (const id of req.prompt_ids)
      if (!Number.isInteger(id) || id < 0 || id >= this.info.vocab_size)
        throw new EngineError(`token id ${id} is outside the vocabulary [0, ${this.info.vocab_size})`, "invalid_request");
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
        const steps = this.sched.plan();
        if (steps.length === 0) break;
        for (const s of steps) for (const q of s.seqs) this.inFlight.add(q);
        await Promise.all(steps.map((s) => this.runStep(s)));
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

  private async runStep(step: PlannedStep): Promise<void> {
    let results;
    try {
      results = await this.backend.step(step.replica, step.work);
    } catch (e) {
      return this.stepFailed(step, e as Error);
    }
    step.seqs.forEach((seq, i) => {
      const w = step.work[i], r = results[i];
      if (seq.finished) return this.sched.drop(seq);
      if (r.logits && seq.req.params.prompt_logprobs) this.collectPromptLogprobs(seq, w.start, w.tokens.length, r.logits);
      seq.computed += w.tokens.length;
      if (seq.computed <= seq.promptLen) this.promptTotal += w.tokens.length;
      if (!step.samples[i] || !r.sampled) return;
      if (seq.computed === seq.promptLen && seq.req.params.prompt_logprobs) seq.events.push({ type: "prompt", logprobs: seq.promptLogprobs });
      if (!r.spec) return this.accept(seq, r.sampled.token, r.sampled.logprob, r.sampled.top);
      // Speculative: the accepted drafts are in the cache now; the token after them is pending.
      const drafted = w.spec?.draft?.length ?? 0, accepted = r.spec.emitted.length - 1;
      this.specDrafted += drafted;
      this.specAccepted += accepted;
      seq.noteDrafts(drafted, accepted);
      seq.computed += accepted;
      seq.draft = r.spec.draft;
      for (const e of r.spec.emitted) {
        this.accept(seq, e.token, e.logprob, e.top);
        if (seq.finished) return;
      }
      this.sched.books[seq.replica].shrink(seq.id, seq.computed);
    });
  }

  private accept(seq: Sequence, token: number, logprob?: number, top?: { id: number; logprob: number }[]): void {
    const p = seq.req.params;
    seq.tokens.push(token);
    this.genTotal++;
    const stop = (!p.ignore_eos && this.backend.config.eos_ids.includes(token)) || p.stop_token_ids.includes(token);
    if (!stop) seq.events.push({ type: "token", id: token, logprob, top_logprobs: top });
    if (stop) seq.finish("stop");
    else if (seq.outputLen >= seq.maxTokens || seq.tokens.length >= this.info.max_model_len) seq.finish("length");
    if (seq.finished) this.sched.drop(seq);
  }

  private collectPromptLogprobs(seq: Sequence, start: number, n: number, logits: Float32Array): void {
    const V = this.info.vocab_size;
    if (start === 0 && seq.promptLogprobs.length === 0) seq.promptLogprobs.push(null);
    if (seq.promptLogprobs.length !== start + 1) return; // recomputed after preemption: have them
    for (let j = 0; j < n && start + j + 1 < seq.promptLen; j++) {
      const row = logits.subarray(j * V, (j + 1) * V);
      let m = -Infinity;
      for (let v = 0; v < V; v++) m = Math.max(m, row[v]);
      let z = 0;
      for (let v = 0; v < V; v++) z += Math.exp(row[v] - m);
      seq.promptLogprobs.push(row[seq.tokens[start + j + 1]] - m - Math.log(z));
    }
  }

  /** A failed step (an actor crashed): its sequences recompute their cache and try again. */
  private stepFailed(step: PlannedStep, e: Error): void {
    this.o.log?.(`step on replica ${step.replica} failed: ${e.message}`);
    for (const seq of step.seqs) {
      if (seq.finished) {
        this.sched.drop(seq);
        continue;
      }
      seq.failures++;
      if (seq.failures > (this.o.maxStepRetries ?? 2)) {
        seq.finish("error", e.message);
        this.sched.drop(seq);
      } else this.sched.preempt(seq);
    }
  }

  stats(): EngineStats {
    if (performance.now() - this.loadAt > 1000) {
      this.loadAt = performance.now();
      this.backend.expertLoad().then((l) => (this.load = l), () => {});
    }
    const books = this.sched.books;
    return {
      running: this.sched.running.length,
      waiting: this.sched.waiting.length,
      kv_blocks_used: books.reduce((a, b) => a + b.used, 0),
      kv_blocks_total: books.reduce((a, b) => a + b.pages, 0),
      prompt_tokens_total: this.promptTotal,
      generation_tokens_total: this.genTotal,
      expert_load: this.load,
      ...(this.specK ? { spec_drafted_total: this.specDrafted, spec_accepted_total: this.specAccepted } : {}),
    };
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
