// Runs the planned steps on the backend and applies what comes back to the sequences: tokens,
// prompt logprobs, speculative bookkeeping, and every failure path. Failures are kept to the
// sequences they belong to: a sequence whose own work failed ends alone, a step that failed as a
// whole is retried in halves until the culprit is alone, a cache found lost is recomputed (as
// preemption does), and a step no host could run is retried, then ends with "unavailable".
import { BackendUnavailable, type ModelBackend, type SeqResult, type SeqWork } from "./backend.ts";
import type { PlannedStep, Scheduler } from "./scheduler.ts";
import type { Sequence } from "./sequence.ts";
import type { EngineError, TopLogprob } from "./types.ts";

/** A sequence whose cache keeps being lost (an actor restarting in a loop) ends after this many
 * recomputations rather than looping forever. */
const MAX_RECOMPUTES = 8;

export interface ExecutorOptions {
  maxStepRetries?: number; // retries of a sequence whose steps no host could run (default 2)
  log?: (msg: string) => void;
}

export class StepExecutor {
  promptTotal = 0;
  genTotal = 0;
  specDrafted = 0;
  specAccepted = 0;
  stepsDone = 0; // steps that came back (health: the model has run)

  constructor(private readonly backend: ModelBackend, private readonly sched: Scheduler,
              private readonly maxModelLen: number, private readonly o: ExecutorOptions = {}) {}

  async run(step: PlannedStep): Promise<void> {
    let results: SeqResult[];
    try {
      results = await this.backend.step(step.replica, step.work);
    } catch (e) {
      return this.failed(step, e as Error);
    }
    if (results?.length !== step.work.length)
      return this.failed(step, new Error(`the backend answered ${results?.length} results for ${step.work.length} sequences`));
    this.stepsDone++;
    const answered = results.find((r) => r.cache !== undefined)?.cache;
    if (answered !== undefined) this.sched.books[step.replica].observe(answered); // pages of older incarnations are gone
    const lost = results.filter((r) => r.stale).length;
    if (lost) this.o.log?.(`replica ${step.replica} lost the cache of ${lost} sequence(s): recomputing them`);
    step.seqs.forEach((seq, i) => {
      try {
        this.apply(seq, step.work[i], results[i], step.samples[i]);
      } catch (e) {
        this.end(seq, `internal error: ${(e as Error).message}`, "internal"); // its own, not its neighbours'
      }
    });
  }

  private apply(seq: Sequence, w: SeqWork, r: SeqResult, samples: boolean): void {
    if (seq.finished) return this.sched.drop(seq);
    if (r.stale) return this.recompute(seq);
    if (r.error) return this.end(seq, r.error, "internal");
    if (seq.constraintError) return this.end(seq, seq.constraintError, "internal");
    seq.failures = 0;
    seq.cache = r.cache;
    const p = seq.req.params;
    if (p.prompt_logprobs && w.start < seq.promptLen) collectPromptLogprobs(seq, w.start, r.logprobs);
    seq.computed += w.tokens.length;
    if (seq.computed <= seq.promptLen) this.promptTotal += w.tokens.length;
    if (!samples) return this.sched.offerPages(seq, r.cache);
    if (!r.sampled) return this.end(seq, "the step answered no token for this sequence", "internal"); // else it would wait forever
    if (seq.computed === seq.promptLen && p.prompt_logprobs) seq.events.push({ type: "prompt", logprobs: seq.promptLogprobs });
    if (!r.spec) {
      this.sched.offerPages(seq, r.cache, [r.sampled.token]);
      return this.accept(seq, r.sampled.token, r.sampled.logprob, r.sampled.top);
    }
    // Speculative: the accepted drafts are in the cache now; the token after them is pending.
    const drafted = w.spec?.draft?.length ?? 0, accepted = r.spec.emitted.length - 1;
    this.specDrafted += drafted;
    this.specAccepted += accepted;
    seq.noteDrafts(drafted, accepted);
    seq.computed += accepted;
    seq.draft = seq.matcher ? [] : r.spec.draft; // constrained sequences do not draft
    this.sched.offerPages(seq, r.cache, r.spec.emitted.map((e) => e.token));
    for (const e of r.spec.emitted) {
      this.accept(seq, e.token, e.logprob, e.top);
      if (seq.finished) return;
    }
    this.sched.books[seq.replica].shrink(seq.id, seq.computed);
  }

  private accept(seq: Sequence, token: number, logprob?: number, top?: TopLogprob[]): void {
    const p = seq.req.params;
    if (seq.matcher && !seq.matcher.accept(token)) return this.end(seq, `token ${token} is not allowed by the grammar`, "internal");
    seq.tokens.push(token);
    this.genTotal++;
    const stop = (!p.ignore_eos && this.backend.config.eos_ids.includes(token)) || p.stop_token_ids.includes(token)
      || (seq.matcher?.grammar.vocab.end.includes(token) ?? false); // a grammar's end, even with ignore_eos
    // the first token says what the prefix cache gave (a client's stop string may end it before "done")
    const cached = seq.outputLen === 1 && seq.cachedTokens ? { cached_tokens: seq.cachedTokens } : {};
    if (!stop) seq.events.push({ type: "token", id: token, logprob, top_logprobs: top, ...cached });
    // a grammar that is complete with nothing left to add ends the output (ignore_eos or not)
    if (stop || seq.matcher?.done()) seq.finish("stop");
    else if (seq.outputLen >= seq.maxTokens || seq.tokens.length >= this.maxModelLen) seq.finish("length");
    if (seq.finished) this.sched.drop(seq);
  }

  /** The step failed as a whole. A step no host could run is planned again (a cache lost with
   * the host is found stale then, and recomputed); any other failure came from the work itself:
   * retried in halves so that only the sequence that causes it ends, and its neighbours go on. */
  private async failed(step: PlannedStep, e: Error): Promise<void> {
    const unavailable = e instanceof BackendUnavailable;
    if (!unavailable && step.seqs.length > 1) {
      this.o.log?.(`step on replica ${step.replica} failed (${e.message}): retrying its ${step.seqs.length} sequences in halves`);
      const half = step.seqs.length >> 1;
      await this.run(slice(step, 0, half));
      await this.run(slice(step, half, step.seqs.length));
      return;
    }
    this.o.log?.(`step on replica ${step.replica} failed: ${e.message}`);
    for (const seq of step.seqs) {
      if (seq.finished) this.sched.drop(seq);
      else if (!unavailable) this.end(seq, e.message, "internal");
      else if (++seq.failures > (this.o.maxStepRetries ?? 2) || (e as BackendUnavailable).final) this.end(seq, e.message, "unavailable");
    }
  }

  /** Its cache is gone (the actor holding it was restarted, passivated or moved): recompute. */
  private recompute(seq: Sequence): void {
    // pages cached by the lost incarnation must never be offered again (they may hold nothing)
    if (seq.cache !== undefined && seq.replica >= 0) this.sched.books[seq.replica].forget(seq.cache);
    if (++seq.recomputes > MAX_RECOMPUTES) return this.end(seq, `its KV cache was lost ${MAX_RECOMPUTES} times`, "unavailable");
    this.sched.preempt(seq);
  }

  private end(seq: Sequence, error: string, code: EngineError["code"]): void {
    seq.finish("error", error, code);
    this.sched.drop(seq);
  }
}

/** The step's sequences [a, b) as a step of their own (same work: same draws, same drafts). */
function slice(step: PlannedStep, a: number, b: number): PlannedStep {
  return { replica: step.replica, seqs: step.seqs.slice(a, b), work: step.work.slice(a, b), samples: step.samples.slice(a, b) };
}

/** Appends a chunk's prompt logprobs (computed by the runner next to the logits). */
function collectPromptLogprobs(seq: Sequence, start: number, logprobs: Float32Array | undefined): void {
  if (start === 0 && seq.promptLogprobs.length === 0) seq.promptLogprobs.push(null);
  if (seq.promptLogprobs.length !== start + 1 || !logprobs) return; // recomputed after preemption: have them
  for (const x of logprobs) seq.promptLogprobs.push(x);
}
