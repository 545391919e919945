// Request bodies of /v1/chat/completions and /v1/completions, parsed once at the edge.
// Unknown but harmless OpenAI fields (user, metadata, store, ...) are stripped; fields we cannot honour
// are refused with a 400 that names them (a custom issue whose path is the parameter).
import { z } from "zod";

export const MAX_N = 16;
export const MAX_LOGPROBS = 20;
export const MAX_PROMPTS = 256; // prompts in one /v1/completions batch
/** vLLM's _SAMPLING_EPS: a temperature below it is greedy (request.ts maps it to 0). */
export const SAMPLING_EPS = 1e-5;

const tokenId = z.number().int().min(0);

const sampling = {
  model: z.string().nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  max_tokens: z.number().int().min(1).nullish(),
  n: z.number().int().min(1).max(MAX_N).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  top_k: z.number().int().min(-1).nullish(),
  min_p: z.number().min(0).max(1).nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  // below SAMPLING_EPS, logits / penalty overflow the sampler's float32 (Infinity - Infinity = NaN)
  repetition_penalty: z.number().min(SAMPLING_EPS).max(2).nullish(),
  seed: z.number().int().nullish(),
  stop: z.union([z.string(), z.array(z.string()).max(16)]).nullish(),
  stop_token_ids: z.array(tokenId).max(64).nullish(),
  ignore_eos: z.boolean().nullish(),
  skip_special_tokens: z.boolean().nullish(),
  return_tokens_as_token_ids: z.boolean().nullish(),
  user: z.string().nullish(),
  logit_bias: z.record(z.string(), z.number()).nullish(),
  ...structured(),
};

/** Structured output (src/gateway/structured.ts): OpenAI's response_format and vLLM's guided_*. */
function structured() {
  const schema = z.record(z.string(), z.unknown());
  return {
    response_format: z.discriminatedUnion("type", [
      z.looseObject({ type: z.literal("text") }),
      z.looseObject({ type: z.literal("json_object") }),
      z.looseObject({
        type: z.literal("json_schema"),
        json_schema: z.looseObject({ name: z.string().nullish(), schema: schema.nullish(), strict: z.boolean().nullish() }),
      }),
    ]).nullish(),
    guided_json: z.union([z.string(), schema]).nullish(),
    guided_regex: z.string().nullish(),
    guided_choice: z.array(z.string().min(1)).min(1).nullish(),
  };
}
const STRUCTURED = ["response_format", "guided_json", "guided_regex", "guided_choice"] as const;
export type StructuredFields = { [K in (typeof STRUCTURED)[number]]?: z.infer<ReturnType<typeof structured>[K]> };

const contentPart = z.looseObject({ type: z.string(), text: z.unknown().optional() });

const message = z.object({
  role: z.enum(["system", "developer", "user", "assistant", "tool"]),
  content: z.union([z.string(), z.array(contentPart)]).nullish(),
  name: z.string().nullish(),
  tool_calls: z.array(z.unknown()).nullish(),
  tool_call_id: z.string().nullish(),
});

// OpenAI's function tools; a name is what the model writes back, so it is kept to OpenAI's alphabet
const functionTool = z.object({
  type: z.literal("function"),
  function: z.object({
    name: z.string().regex(/^[\w.-]{1,64}$/, "a function name is 1-64 letters, digits, _ . or -"),
    description: z.string().nullish(),
    parameters: z.record(z.string(), z.unknown()).nullish(),
    strict: z.boolean().nullish(),
  }),
});
export type FunctionTool = z.infer<typeof functionTool>;

const toolChoice = z.union([
  z.enum(["none", "auto", "required"]),
  z.object({ type: z.literal("function"), function: z.object({ name: z.string() }) }),
]);
export type ToolChoice = z.infer<typeof toolChoice>;

type Ctx = z.core.$RefinementCtx;

function unsupported(ctx: Ctx, path: (string | number)[], message: string): void {
  ctx.addIssue({ code: "custom", path, message });
}

interface CommonChecked extends StructuredFields {
  stream?: boolean | null;
  stream_options?: unknown;
  logit_bias?: Record<string, number> | null;
}

function checkCommon(b: CommonChecked, ctx: Ctx): void {
  const asked = STRUCTURED.filter((k) => b[k] != null && !(k === "response_format" && b.response_format?.type === "text"));
  for (const k of asked.slice(1)) ctx.addIssue({ code: "custom", path: [k], message: `${k} cannot be combined with ${asked[0]}` });
  if (b.stream_options && !b.stream) {
    ctx.addIssue({ code: "custom", path: ["stream_options"], message: "stream_options is only allowed when stream is true" });
  }
  if (b.logit_bias && Object.keys(b.logit_bias).length > 0) unsupported(ctx, ["logit_bias"], "logit_bias is not supported");
}

export const ChatCompletionRequest = z
  .object({
    ...sampling,
    messages: z.array(message).min(1),
    max_completion_tokens: z.number().int().min(1).nullish(),
    logprobs: z.boolean().nullish(),
    top_logprobs: z.number().int().min(0).max(MAX_LOGPROBS).nullish(),
    tools: z.array(functionTool).nullish(),
    tool_choice: toolChoice.nullish(),
    chat_template_kwargs: z.record(z.string(), z.unknown()).nullish(),
    parallel_tool_calls: z.boolean().nullish(),
    functions: z.array(z.unknown()).nullish(),
    function_call: z.unknown().optional(),
    modalities: z.array(z.string()).nullish(),
    audio: z.unknown().optional(),
    add_generation_prompt: z.boolean().nullish(),
  })
  .superRefine((b, ctx) => {
    checkCommon(b, ctx);
    if (b.top_logprobs != null && !b.logprobs && b.top_logprobs > 0) {
      ctx.addIssue({ code: "custom", path: ["top_logprobs"], message: "top_logprobs requires logprobs: true" });
    }
    const names = (b.tools ?? []).map((t) => t.function.name);
    if ((b.tool_choice === "required" || typeof b.tool_choice === "object") && names.length === 0) {
      ctx.addIssue({ code: "custom", path: ["tool_choice"], message: "tool_choice requires tools" });
    } else if (typeof b.tool_choice === "object" && b.tool_choice && !names.includes(b.tool_choice.function.name)) {
      ctx.addIssue({ code: "custom", path: ["tool_choice", "function", "name"], message: `no tool is named ${b.tool_choice.function.name}` });
    }
    if ((b.functions?.length ?? 0) > 0) unsupported(ctx, ["functions"], "functions is deprecated and not supported; send tools");
    if (b.function_call != null && b.function_call !== "none") unsupported(ctx, ["function_call"], "function_call is deprecated and not supported; send tool_choice");
    if (b.audio != null || b.modalities?.some((m) => m !== "text")) unsupported(ctx, ["modalities"], "only text output is supported");
    b.messages.forEach((m, i) => {
      if (!Array.isArray(m.content)) return;
      m.content.forEach((p, j) => {
        if (p.type !== "text") unsupported(ctx, ["messages", i, "content", j, "type"], `content part type ${p.type} is not supported`);
        else if (typeof p.text !== "string") ctx.addIssue({ code: "custom", path: ["messages", i, "content", j, "text"], message: "text must be a string" });
      });
    });
  });

export const CompletionRequest = z
  .object({
    ...sampling,
    prompt: z.union([
      z.string(),
      z.array(z.string()).min(1).max(MAX_PROMPTS),
      z.array(tokenId).min(1),
      z.array(z.array(tokenId).min(1)).min(1).max(MAX_PROMPTS),
    ]),
    echo: z.boolean().nullish(),
    logprobs: z.number().int().min(0).max(MAX_LOGPROBS).nullish(),
    best_of: z.number().int().min(1).nullish(),
    suffix: z.string().nullish(),
  })
  .superRefine((b, ctx) => {
    checkCommon(b, ctx);
    if (b.best_of != null && b.best_of > (b.n ?? 1)) unsupported(ctx, ["best_of"], "best_of greater than n is not supported");
    if (b.suffix) unsupported(ctx, ["suffix"], "suffix is not supported");
    const prompts = typeof b.prompt === "string" || typeof b.prompt[0] === "number" ? 1 : b.prompt.length;
    if (prompts * (b.n ?? 1) > MAX_PROMPTS) {
      ctx.addIssue({ code: "custom", path: ["n"], message: `at most ${MAX_PROMPTS} choices (prompts x n) per request` });
    }
  });

export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequest>;
export type CompletionRequest = z.infer<typeof CompletionRequest>;
export type SamplingFields = Pick<CompletionRequest, keyof typeof sampling>;
