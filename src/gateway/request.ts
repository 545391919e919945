// What both endpoints do with a request before the engine sees it: read the JSON, check the model,
// check the context length, and turn OpenAI fields into the engine's SamplingParams.
import type { Context } from "hono";
import type { Engine, ModelInfo, SamplingParams } from "../engine/types.ts";
import { fewestTokens } from "../tokenizer/bound.ts";
import type { EncodeResult, PromptEncoder, PromptSource } from "../tokenizer/prompt.ts";
import type { TextCodec } from "./codec.ts";
import type { GatewayEnv } from "./env.ts";
import { ApiError } from "./errors.ts";
import type { ChoiceSpec } from "./generation.ts";
import type { GatewayMetrics } from "./metrics.ts";
import { bodyTimeoutError } from "./middleware/body-limit.ts";
import { SAMPLING_EPS, type SamplingFields } from "./schemas.ts";
import { structuredConstraint } from "./structured.ts";

/** What the route handlers need; built once by createApp. */
export interface GatewayDeps {
  engine: Engine;
  codec: TextCodec;
  /** Tokenizes prompts (off the HTTP thread in a server), refusing what cannot fit the context. */
  encoder: PromptEncoder;
  metrics: GatewayMetrics;
  info: ModelInfo;
  servedModelName: string;
}

/** The body as JSON. A body still arriving when the body deadline passes is a 408. */
export async function readJson(c: Context<GatewayEnv>): Promise<unknown> {
  const text = await beforeAbort(c.req.text(), c.get("bodyDeadline"), () => bodyTimeoutError(c.get("shutdown")));
  if (!text.trim()) throw ApiError.badRequest("The request body is empty; expected a JSON object.", null, "invalid_json");
  try {
    return JSON.parse(text);
  } catch (err) {
    throw ApiError.badRequest(`Malformed JSON in the request body: ${(err as Error).message}`, null, "invalid_json");
  }
}

/** `work`, unless `signal` aborts first (a body read cannot be cancelled from here, only abandoned). */
function beforeAbort<T>(work: Promise<T>, signal: AbortSignal | undefined, error: () => Error): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) return Promise.reject(error());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(error());
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** A prompt's token ids. What cannot fit the context (judged from its bytes when it is plainly too
 * long) is a 400 before it is ever tokenized. */
export async function encodePrompt(deps: GatewayDeps, source: PromptSource, param: string): Promise<number[]> {
  const ctx = deps.info.max_model_len;
  // a plain text that cannot fit is refused here, without even a copy to a tokenizer worker
  const atLeast = source.kind === "text" ? fewestTokens(source.text, deps.codec.maxTokenBytes ?? Infinity) : 0;
  const r: EncodeResult = atLeast >= ctx
    ? { ok: false, reason: "too_long", atLeast }
    : await deps.encoder.encode({ ...source, limit: ctx });
  if (r.ok) return r.ids;
  if (r.reason === "template") {
    throw ApiError.badRequest(`The chat template could not render these messages: ${r.message}`, param);
  }
  throw ApiError.badRequest(
    `This model's maximum context length is ${ctx} tokens. However, your prompt has at least ${r.atLeast} tokens, which leaves no room for a completion.`,
    param, "context_length_exceeded");
}

export function checkModel(model: string | null | undefined, served: string): void {
  if (model != null && model !== served) {
    throw new ApiError(404, `The model \`${model}\` does not exist. This server serves \`${served}\`.`,
      "not_found_error", "model", "model_not_found");
  }
}

export function checkTokenIds(ids: readonly number[], info: ModelInfo, param: string): void {
  const bad = ids.find((id) => id >= info.vocab_size);
  if (bad !== undefined) {
    throw ApiError.badRequest(`Token id ${bad} is out of range: the vocabulary has ${info.vocab_size} tokens.`, param, "invalid_value");
  }
}

/** vLLM's rule: the prompt plus the requested completion must fit the context; no max_tokens means
 * "up to the end of the context". */
export function resolveMaxTokens(promptLen: number, requested: number | null | undefined, info: ModelInfo, promptParam: string): number {
  const ctx = info.max_model_len;
  if (promptLen >= ctx) {
    throw ApiError.badRequest(
      `This model's maximum context length is ${ctx} tokens. However, your prompt has ${promptLen} tokens, which leaves no room for a completion.`,
      promptParam, "context_length_exceeded");
  }
  if (requested != null && promptLen + requested > ctx) {
    throw ApiError.badRequest(
      `This model's maximum context length is ${ctx} tokens. However, you requested ${promptLen + requested} tokens (${promptLen} in the prompt, ${requested} for the completion).`,
      "max_tokens", "context_length_exceeded");
  }
  return requested ?? ctx - promptLen;
}

export function stopStrings(stop: string | string[] | null | undefined): string[] {
  const list = stop == null ? [] : typeof stop === "string" ? [stop] : stop;
  return list.filter((s) => s.length > 0);
}

export function samplingParams(
  b: SamplingFields,
  maxTokens: number,
  logprobs: number | null,
  promptLogprobs: boolean,
  info: ModelInfo,
  codec?: TextCodec, // for structured output (response_format, guided_*): its vocabulary
): SamplingParams {
  const constraint = codec ? structuredConstraint(b, codec, info) : undefined;
  const stopIds = b.stop_token_ids ?? [];
  checkTokenIds(stopIds, info, "stop_token_ids");
  const temperature = b.temperature ?? 1;
  const topK = b.top_k ?? 0;
  return {
    // vLLM's rule: a temperature under _SAMPLING_EPS is greedy (a tiny one would overflow the
    // sampler's float32 logits / temperature, or round to 0 on the way there)
    temperature: temperature < SAMPLING_EPS ? 0 : temperature,
    top_p: b.top_p ?? 1,
    // a top_k that keeps the whole vocabulary is no top_k (and must not wrap in the sampler's int32)
    top_k: topK >= info.vocab_size ? 0 : topK,
    min_p: b.min_p ?? 0,
    presence_penalty: b.presence_penalty ?? 0,
    frequency_penalty: b.frequency_penalty ?? 0,
    repetition_penalty: b.repetition_penalty ?? 1,
    seed: b.seed ?? null,
    max_tokens: maxTokens,
    stop_token_ids: stopIds,
    ignore_eos: b.ignore_eos ?? false,
    logprobs,
    prompt_logprobs: promptLogprobs,
    ...(constraint ? { constraint } : {}),
  };
}

let requestSeq = 0;

/** One spec per choice. Choice i of a seeded request samples with seed + i: reproducible, yet the
 * n choices are not copies of each other. */
export function choiceSpecs(
  c: Context<GatewayEnv>,
  deps: GatewayDeps,
  prompts: { ids: number[]; params: SamplingParams }[],
  n: number,
  stop: string[],
  skipSpecialTokens: boolean,
  startMs: number,
): ChoiceSpec[] {
  // x-request-id comes from the client and may repeat; engine ids must not
  const rid = `${c.get("requestId")}-${(requestSeq++).toString(36)}`;
  return prompts.flatMap((p, pi) =>
    Array.from({ length: n }, (_, i) => ({
      engineRequestId: `${rid}-${pi * n + i}`,
      promptIds: p.ids,
      params: { ...p.params, seed: p.params.seed === null ? null : p.params.seed + i },
      stop,
      eosId: deps.info.eos_token_id,
      skipSpecialTokens,
      signal: c.get("signal"),
      deadline: c.get("deadline"),
      shutdown: c.get("shutdown"),
      timer: deps.metrics.sequence(startMs, c.get("tally"), i === 0),
    })),
  );
}
