// POST /v1/chat/completions: messages through the model's chat template, then one engine sequence per
// choice; answered whole or as `chat.completion.chunk` events.
import type { Context } from "hono";
import type { ChatTemplateMessage } from "./codec.ts";
import { collectAll, merge, startChoices } from "./choices.ts";
import type { GatewayEnv } from "./env.ts";
import { chatLogprobs, createdNow, type TokenNamer, tokenNamer, usage } from "./format.ts";
import type { Choice } from "./generation.ts";
import {
  checkModel, choiceSpecs, encodePrompt, type GatewayDeps, readJson, resolveMaxTokens, samplingParams, stopStrings,
} from "./request.ts";
import { ChatCompletionRequest } from "./schemas.ts";
import { sseResponse } from "./sse.ts";

type Message = ChatCompletionRequest["messages"][number];

function templateMessage(m: Message): ChatTemplateMessage {
  const content = typeof m.content === "string" ? m.content
    : (m.content ?? []).map((p) => (typeof p.text === "string" ? p.text : "")).join("\n");
  const out: ChatTemplateMessage = { role: m.role === "developer" ? "system" : m.role, content };
  if (m.tool_calls) out.tool_calls = m.tool_calls;
  if (m.tool_call_id) out.tool_call_id = m.tool_call_id;
  if (m.name) out.name = m.name;
  return out;
}

function renderPrompt(deps: GatewayDeps, body: ChatCompletionRequest): Promise<number[]> {
  const messages = body.messages.map(templateMessage);
  return encodePrompt(deps, { kind: "chat", messages, addGenerationPrompt: body.add_generation_prompt ?? true }, "messages");
}

interface Head {
  id: string;
  created: number;
  model: string;
}

export async function chatCompletions(c: Context<GatewayEnv>, deps: GatewayDeps): Promise<Response> {
  const startMs = performance.now();
  const body = ChatCompletionRequest.parse(await readJson(c));
  checkModel(body.model, deps.servedModelName);
  const promptIds = await renderPrompt(deps, body);
  const maxTokens = resolveMaxTokens(promptIds.length, body.max_completion_tokens ?? body.max_tokens, deps.info, "messages");
  const logprobs = body.logprobs ? (body.top_logprobs ?? 0) : null;
  const params = samplingParams(body, maxTokens, logprobs, false, deps.info);
  const specs = choiceSpecs(c, deps, [{ ids: promptIds, params }], body.n ?? 1, stopStrings(body.stop),
    body.skip_special_tokens ?? true, startMs);
  const choices = await startChoices(deps.engine, deps.codec, specs);
  const head: Head = { id: `chatcmpl-${c.get("requestId")}`, created: createdNow(), model: deps.servedModelName };
  const observeE2e = () => deps.metrics.e2e.observe((performance.now() - startMs) / 1000);
  const name = tokenNamer(deps.codec, body.return_tokens_as_token_ids ?? false);
  if (body.stream) {
    const includeUsage = body.stream_options?.include_usage ?? false;
    const chunks = streamChunks(name, head, choices, promptIds.length, logprobs !== null, includeUsage);
    return sseResponse(chunks, { onCancel: () => choices.forEach((ch) => ch.abort()), onEnd: observeE2e });
  }
  const done = await collectAll(choices);
  observeE2e();
  return c.json({
    ...head,
    object: "chat.completion",
    choices: done.map((d, index) => ({
      index,
      message: { role: "assistant", content: d.text },
      logprobs: logprobs !== null ? chatLogprobs(name, d.tokens) : null,
      finish_reason: d.finishReason,
    })),
    usage: usage(promptIds.length, done.reduce((s, d) => s + d.completionTokens, 0)),
  });
}

async function* streamChunks(
  name: TokenNamer,
  head: Head,
  choices: Choice[],
  promptTokens: number,
  wantLogprobs: boolean,
  includeUsage: boolean,
): AsyncGenerator<unknown> {
  const base = { ...head, object: "chat.completion.chunk", ...(includeUsage ? { usage: null } : {}) };
  const chunk = (index: number, delta: object, logprobs: unknown, finish_reason: string | null) =>
    ({ ...base, choices: [{ index, delta, logprobs, finish_reason }] });
  let completionTokens = 0;
  try {
    for (let i = 0; i < choices.length; i++) yield chunk(i, { role: "assistant", content: "" }, null, null);
    for await (const [i, ev] of merge(choices.map((ch) => ch.events()))) {
      if (ev.type === "delta") {
        yield chunk(i, { content: ev.text }, wantLogprobs ? chatLogprobs(name, ev.tokens) : null, null);
      } else if (ev.type === "finish") {
        completionTokens += ev.completionTokens;
        yield chunk(i, {}, null, ev.reason);
      }
    }
    if (includeUsage) yield { ...base, choices: [], usage: usage(promptTokens, completionTokens) };
  } finally {
    for (const ch of choices) ch.abort();
  }
}
