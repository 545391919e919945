// What both endpoints do with a request before the engine sees it: read the JSON, check the model,
// check the context length, and turn OpenAI fields into the engine's SamplingParams.
import type { Context } from "hono";
import type { Engine, ModelInfo, SamplingParams } from "../engine/types.ts";
import type { TextCodec } from "./codec.ts";
import type { GatewayEnv } from "./env.ts";
import { ApiError } from "./errors.ts";
import type { ChoiceSpec } from "./generation.ts";
import type { GatewayMetrics } from "./metrics.ts";
import type { SamplingFields } from "./schemas.ts";

/** What the route handlers need; built once by createApp. */
export interface GatewayDeps {
  engine: Engine;
  codec: TextCodec;
  metrics: GatewayMetrics;
  info: ModelInfo;
  servedModelName: string;
}

export async function readJson(c: Context<GatewayEnv>): Promise<unknown> {
  const text = await c.req.text();
  if (!text.trim()) throw ApiError.badRequest("The request body is empty; expected a JSON object.", null, "invalid_json");
  try {
    return JSON.parse(text);
  } catch (err) {
    throw ApiError.badRequest(`Malformed JSON in the request body: ${(err as Error).message}`, null, "invalid_json");
  }
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
): SamplingParams {
  const stopIds = b.stop_token_ids ?? [];
  checkTokenIds(stopIds, info, "stop_token_ids");
  return {
    temperature: b.temperature ?? 1,
    top_p: b.top_p ?? 1,
    top_k: b.top_k ?? 0,
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
      timer: deps.metrics.sequence(startMs),
    })),
  );
}
