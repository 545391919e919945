// POST /v1/chat/completions: messages (and tools) through the model's chat template, then one engine
// sequence per choice; the text read back as reasoning, tool calls and content (chat-output.ts);
// answered whole or as `chat.completion.chunk` events.
import type { Context } from "hono";
import type { ChatTemplateMessage } from "./codec.ts";
import { ChatOutput, type ChatOutputOptions, chatFinishReason, joinDeltas } from "./chat-output.ts";
import { answer, type Head, responseHead } from "./answer.ts";
import { merge, startChoices } from "./choices.ts";
import type { GatewayEnv } from "./env.ts";
import { ApiError } from "./errors.ts";
import { chatLogprobs, type TokenNamer, tokenNamer, usage } from "./format.ts";
import type { Choice, TokenInfo } from "./generation.ts";
import { promptOpensThinking, type ReasoningParserName } from "./reasoning.ts";
import {
  checkModel, choiceSpecs, encodePrompt, type GatewayDeps, readJson, resolveMaxTokens, samplingParams, stopStrings,
} from "./request.ts";
import { ChatCompletionRequest } from "./schemas.ts";
import { toolCallConstraint } from "./tool-constraint.ts";
import type { ToolCallParserName } from "./tools.ts";

/** How chat outputs are read (serve's --reasoning-parser and --tool-call-parser). */
export interface ChatOptions {
  /** Split <think>...</think> off as reasoning_content; none by default, as in vLLM. */
  reasoningParser?: ReasoningParserName | null;
  /** Read tool calls out of the output; DeepSeek's format when not given (this server serves
   * DeepSeek-V3 architecture models; both parsers read V3's and V3.1's spellings), null to refuse tools. */
  toolCallParser?: ToolCallParserName | null;
}

type Message = ChatCompletionRequest["messages"][number];

export function templateMessage(m: Message): ChatTemplateMessage {
  const content = typeof m.content === "string" ? m.content
    : (m.content ?? []).map((p) => (typeof p.text === "string" ? p.text : "")).join("\n");
  const out: ChatTemplateMessage = { role: m.role === "developer" ? "system" : m.role, content };
  if (m.tool_calls) out.tool_calls = m.tool_calls;
  if (m.tool_call_id) out.tool_call_id = m.tool_call_id;
  if (m.name) out.name = m.name;
  return out;
}

/** The tools the model is shown: none with tool_choice "none" (the model cannot call what it never saw). */
function shownTools(body: ChatCompletionRequest, opts: ChatOptions): ChatCompletionRequest["tools"] {
  const tools = body.tools?.length ? body.tools : null;
  if (tools === null || body.tool_choice === "none") return null;
  if (opts.toolCallParser === null) {
    throw ApiError.badRequest("This server reads no tool calls (it has no tool-call parser); send tool_choice: \"none\" or no tools.",
      "tools", "unsupported_parameter");
  }
  return tools;
}

function renderPrompt(deps: GatewayDeps, body: ChatCompletionRequest, tools: ChatCompletionRequest["tools"]): Promise<number[]> {
  const messages = body.messages.map(templateMessage);
  return encodePrompt(deps, {
    kind: "chat", messages, addGenerationPrompt: body.add_generation_prompt ?? true, tools, kwargs: body.chat_template_kwargs,
  }, "messages");
}

export async function chatCompletions(c: Context<GatewayEnv>, deps: GatewayDeps, opts: ChatOptions = {}): Promise<Response> {
  const startMs = performance.now();
  const body = ChatCompletionRequest.parse(await readJson(c));
  checkModel(body.model, deps.servedModelName);
  const tools = shownTools(body, opts);
  const promptIds = await renderPrompt(deps, body, tools);
  const maxTokens = resolveMaxTokens(promptIds.length, body.max_completion_tokens ?? body.max_tokens, deps.info, "messages");
  const logprobs = body.logprobs ? (body.top_logprobs ?? 0) : null;
  // "required" or a named function: decoding is held to one valid call (tool-constraint.ts)
  const spelling = opts.toolCallParser === "deepseek_v31" ? "v31" : "v3";
  const constraint = tools ? toolCallConstraint(tools, body.tool_choice, deps.codec, deps.info, spelling) : null;
  const sampled = samplingParams(body, maxTokens, logprobs, false, deps.info, deps.codec);
  if (constraint && sampled.constraint) {
    throw ApiError.badRequest("tool_choice \"required\" or a named function makes the output a tool call; it cannot be combined with response_format or guided_*.",
      "tool_choice", "unsupported_parameter");
  }
  const params = constraint ? { ...sampled, constraint } : sampled;
  const reading: ChatOutputOptions = {
    reasoning: Boolean(opts.reasoningParser),
    // the last few prompt tokens say whether the template left the model inside <think>; a constrained
    // output (a forced call, a schema) cannot think, it starts with the answer
    openThinking: Boolean(opts.reasoningParser) && !params.constraint &&
      promptOpensThinking(deps.codec.decode(promptIds.slice(-8), { skipSpecialTokens: false })),
    tools: tools !== null,
    singleCall: body.parallel_tool_calls === false,
  };
  // the tool-call markers must reach the parser even where a tokenizer calls them special
  const skipSpecial = reading.tools ? false : (body.skip_special_tokens ?? true);
  const specs = choiceSpecs(c, deps, [{ ids: promptIds, params }], body.n ?? 1, stopStrings(body.stop), skipSpecial, startMs);
  const choices = await startChoices(deps.engine, deps.codec, specs);
  const head = responseHead(c, deps, "chatcmpl");
  const name = tokenNamer(deps.codec, body.return_tokens_as_token_ids ?? false);
  const includeUsage = body.stream_options?.include_usage ?? false;
  return answer(c, deps, {
    startMs, choices, stream: body.stream ?? false,
    chunks: () => streamChunks({ name, head, choices, reading, promptTokens: promptIds.length, wantLogprobs: logprobs !== null, includeUsage }),
    whole: (done) => ({
      ...head,
      object: "chat.completion",
      choices: done.map((d, index) => {
        const out = new ChatOutput(reading);
        const message = joinDeltas([...out.push(d.text), ...out.finish()], reading.reasoning);
        return {
          index,
          message,
          logprobs: logprobs !== null ? chatLogprobs(name, d.tokens) : null,
          finish_reason: chatFinishReason(d.finishReason, out.toolCalls),
        };
      }),
      usage: usage(promptIds.length, done.reduce((s, d) => s + d.completionTokens, 0), Math.max(0, ...done.map((d) => d.cachedTokens))),
    }),
  });
}

interface StreamCtx {
  name: TokenNamer;
  head: Head;
  choices: Choice[];
  reading: ChatOutputOptions;
  promptTokens: number;
  wantLogprobs: boolean;
  includeUsage: boolean;
}

async function* streamChunks(ctx: StreamCtx): AsyncGenerator<unknown> {
  const { name, choices, wantLogprobs, includeUsage } = ctx;
  const base = { ...ctx.head, object: "chat.completion.chunk", ...(includeUsage ? { usage: null } : {}) };
  const chunk = (index: number, delta: object, logprobs: unknown, finish_reason: string | null) =>
    ({ ...base, choices: [{ index, delta, logprobs, finish_reason }] });
  const outputs = choices.map(() => new ChatOutput(ctx.reading));
  // logprobs travel with the first chunk their text shows up in (a parser may hold text back)
  const pending: TokenInfo[][] = choices.map(() => []);
  const takeLogprobs = (i: number) => {
    if (!wantLogprobs || pending[i]!.length === 0) return null;
    const lp = chatLogprobs(name, pending[i]!);
    pending[i] = [];
    return lp;
  };
  let completionTokens = 0, cachedTokens = 0;
  try {
    for (let i = 0; i < choices.length; i++) yield chunk(i, { role: "assistant", content: "" }, null, null);
    for await (const [i, ev] of merge(choices.map((ch) => ch.events()))) {
      if (ev.type === "delta") {
        pending[i]!.push(...ev.tokens);
        for (const delta of outputs[i]!.push(ev.text)) yield chunk(i, delta, takeLogprobs(i), null);
      } else if (ev.type === "finish") {
        completionTokens += ev.completionTokens;
        cachedTokens = Math.max(cachedTokens, ev.cachedTokens);
        for (const delta of outputs[i]!.finish()) yield chunk(i, delta, takeLogprobs(i), null);
        yield chunk(i, {}, takeLogprobs(i), chatFinishReason(ev.reason, outputs[i]!.toolCalls));
      }
    }
    if (includeUsage) yield { ...base, choices: [], usage: usage(ctx.promptTokens, completionTokens, cachedTokens) };
  } finally {
    for (const ch of choices) ch.abort();
  }
}
