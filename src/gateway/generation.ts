// One choice = one engine sequence, seen as text. Turns the engine's token events into text deltas
// (UTF-8 safe, stop strings cut out) and a finish, keeps the per-sequence metrics, and guarantees the
// engine sequence is aborted whenever we stop listening before it is done (stop string, client gone,
// deadline, error).
import { EngineError, type Engine, type GenerateRequest, type SamplingParams, type TokenEvent, type TopLogprob } from "../engine/types.ts";
import type { TextCodec } from "./codec.ts";
import { IncrementalDetokenizer } from "./detokenizer.ts";
import { ApiError, toApiError } from "./errors.ts";
import type { SequenceTimer } from "./metrics.ts";
import { StopMatcher } from "./stop.ts";

export interface TokenInfo {
  id: number;
  logprob?: number;
  top?: TopLogprob[];
}

export type ChoiceEvent =
  | { type: "prompt"; logprobs: (number | null)[] }
  | { type: "delta"; text: string; tokens: TokenInfo[] }
  | { type: "finish"; reason: "stop" | "length"; promptTokens: number; completionTokens: number; cachedTokens: number };

export interface ChoiceSpec {
  engineRequestId: string;
  promptIds: number[];
  params: SamplingParams;
  stop: string[];
  eosId: number;
  skipSpecialTokens: boolean;
  signal: AbortSignal; // client gone, deadline or drain cut
  deadline: AbortSignal;
  shutdown?: AbortSignal; // a drain gave up waiting for this request
  timer: SequenceTimer;
}

type Iter = AsyncIterator<TokenEvent>;

export class Choice {
  private readonly ctrl = new AbortController();
  private finished = false; // the engine said "done"
  private closed = false;

  private constructor(
    private readonly codec: TextCodec,
    private readonly spec: ChoiceSpec,
    private readonly iter: Iter,
    private readonly first: IteratorResult<TokenEvent>,
  ) {}

  /** Submits the sequence and waits for its first event, so that a refusal (429, 400, 503) surfaces
   * before any response header is sent. */
  static async start(engine: Engine, codec: TextCodec, spec: ChoiceSpec): Promise<Choice> {
    const ctrl = new AbortController();
    const req: GenerateRequest = {
      id: spec.engineRequestId,
      prompt_ids: spec.promptIds,
      params: spec.params,
      signal: AbortSignal.any([spec.signal, ctrl.signal]),
    };
    const iter = engine.generate(req)[Symbol.asyncIterator]();
    let first: IteratorResult<TokenEvent>;
    try {
      first = await nextEvent(iter, spec);
      // a sequence that ends before its first token (aborted while queued, failed in prefill) is
      // answered with a proper HTTP status rather than a 200 and an error event
      const ev = first.value as TokenEvent | undefined;
      if (ev?.type === "done" && ev.finish_reason === "abort") throw abortError(spec);
      if (ev?.type === "done" && ev.finish_reason === "error") throw engineFailure(spec, ev.error, ev.error_code);
    } catch (err) {
      ctrl.abort();
      void iter.return?.(undefined)?.catch(() => {});
      throw err;
    }
    spec.timer.admitted(spec.promptIds.length);
    const choice = new Choice(codec, spec, iter, first);
    choice.ctrl.signal.addEventListener("abort", () => ctrl.abort(), { once: true });
    return choice;
  }

  /** Stops listening: cancels the engine sequence unless it is done, and lets the engine's stream run
   * its cleanup (a generator left suspended at its last yield would never reach its `finally`).
   * Idempotent. */
  abort(): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.finished) this.ctrl.abort();
    void this.iter.return?.(undefined)?.catch(() => {});
  }

  async *events(): AsyncGenerator<ChoiceEvent> {
    const { spec } = this;
    const detok = new IncrementalDetokenizer(this.codec, spec.skipSpecialTokens);
    const stopper = new StopMatcher(spec.stop);
    // The token that ends a sequence (EOS, a stop_token_id) is neither shown nor given logprobs.
    const hidden = new Set(spec.params.stop_token_ids);
    if (!spec.params.ignore_eos) hidden.add(spec.eosId);
    let pending: TokenInfo[] = [];
    let generated = 0;
    let cached = 0; // prompt tokens the prefix cache gave (told with the first token, and at the end)
    try {
      for (let r = this.first; !r.done; r = await nextEvent(this.iter, spec)) {
        const ev = r.value;
        if (ev.type === "prompt") {
          yield { type: "prompt", logprobs: ev.logprobs };
        } else if (ev.type === "token") {
          generated += 1;
          cached = ev.cached_tokens ?? cached;
          spec.timer.token();
          if (hidden.has(ev.id)) continue;
          pending.push({ id: ev.id, logprob: ev.logprob, top: ev.top_logprobs });
          const out = stopper.push(detok.push(ev.id));
          if (out.text || out.stopped) {
            yield { type: "delta", text: out.text, tokens: pending };
            pending = [];
          }
          if (out.stopped) {
            this.abort(); // the engine does not know about stop strings
            this.finished = true;
            spec.timer.finish("stop");
            yield { type: "finish", reason: "stop", promptTokens: spec.promptIds.length, completionTokens: generated, cachedTokens: cached };
            return;
          }
        } else {
          if (ev.finish_reason === "error") throw engineFailure(spec, ev.error, ev.error_code);
          if (ev.finish_reason === "abort") throw abortError(spec);
          this.finished = true;
          const tail = stopper.push(detok.flush());
          const text = tail.stopped ? tail.text : tail.text + stopper.flush();
          if (text || pending.length) yield { type: "delta", text, tokens: pending };
          spec.timer.finish(tail.stopped ? "stop" : ev.finish_reason);
          yield {
            type: "finish",
            reason: tail.stopped ? "stop" : ev.finish_reason,
            promptTokens: ev.prompt_tokens,
            completionTokens: ev.completion_tokens,
            cachedTokens: ev.cached_tokens ?? cached,
          };
          return;
        }
      }
      throw new ApiError(500, "engine stream ended without a done event");
    } finally {
      if (!this.finished) spec.timer.finish("abort");
      this.abort();
    }
  }
}

/** The engine's words may name files and source lines: they go to the log with the request id, and
 * the client gets a clean message it can quote back to us. */
function engineFailure(spec: ChoiceSpec, error: string | undefined, code: EngineError["code"] | undefined): ApiError {
  // a refusal with a status of its own (no live host: 503) keeps it
  if (code !== undefined && code !== "internal") return toApiError(new EngineError(error ?? code, code));
  console.error(`[gateway] request ${spec.engineRequestId}: engine error: ${error ?? "unknown"}`);
  return new ApiError(500, `The model failed while generating this sequence (request ${spec.engineRequestId}).`,
    "server_error", null, "engine_error");
}

function abortError(spec: ChoiceSpec): ApiError {
  if (spec.shutdown?.aborted) {
    return new ApiError(503, "The server shut down before this request finished.", "service_unavailable_error", null, "shutting_down");
  }
  if (spec.deadline.aborted) return new ApiError(504, "Request timed out.", "timeout_error", null, "timeout");
  if (spec.signal.aborted) return new ApiError(499, "Client closed the request.", "invalid_request_error", null, "client_closed");
  return new ApiError(503, "The engine aborted the request.", "service_unavailable_error", null, "aborted");
}

/** iter.next(), with an engine that throws on abort reported as the abort it is. */
async function nextEvent(iter: Iter, spec: ChoiceSpec): Promise<IteratorResult<TokenEvent>> {
  try {
    return await iter.next();
  } catch (err) {
    if (spec.signal.aborted) throw abortError(spec);
    throw err;
  }
}
