// What a chat choice's text becomes in OpenAI's message: reasoning (reasoning.ts) first, since R1
// thinks before it answers or calls; then tool calls (tools.ts) out of the answer; the rest is content.
// The same deltas serve a stream (chat.completion.chunk) and, joined, a whole message.
import { ReasoningSplitter } from "./reasoning.ts";
import { ToolCallParser, type ToolEvent } from "./tools.ts";

export interface ToolCallDelta {
  index: number;
  id?: string;
  type?: "function";
  function: { name?: string; arguments: string };
}

export interface ChatDelta {
  reasoning_content?: string;
  content?: string;
  tool_calls?: ToolCallDelta[];
}

export interface ChatOutputOptions {
  /** Split off <think>...</think> (--reasoning-parser). */
  reasoning: boolean;
  /** The prompt ends inside <think> (the template opened it). */
  openThinking: boolean;
  /** Read tool calls (the request has tools and tool_choice is not "none"). */
  tools: boolean;
  /** parallel_tool_calls: false: the first call is the answer, later ones are dropped. */
  singleCall?: boolean;
}

export class ChatOutput {
  private readonly thinking: ReasoningSplitter | null;
  private readonly calls: ToolCallParser | null;
  private readonly maxCalls: number;

  constructor(opts: ChatOutputOptions) {
    this.thinking = opts.reasoning ? new ReasoningSplitter(opts.openThinking) : null;
    this.calls = opts.tools ? new ToolCallParser() : null;
    this.maxCalls = opts.singleCall ? 1 : Infinity;
  }

  /** Calls read so far (and kept). */
  get toolCalls(): number {
    return Math.min(this.calls?.calls ?? 0, this.maxCalls);
  }

  push(text: string): ChatDelta[] {
    if (!text) return [];
    if (!this.thinking) return this.answer(text, false);
    const piece = this.thinking.push(text);
    return [...reasoning(piece.reasoning), ...this.answer(piece.content, false)];
  }

  finish(): ChatDelta[] {
    const piece = this.thinking?.finish() ?? { reasoning: "", content: "" };
    return [...reasoning(piece.reasoning), ...this.answer(piece.content, true)];
  }

  private answer(text: string, ending: boolean): ChatDelta[] {
    if (!this.calls) return text ? [{ content: text }] : [];
    const events = text ? this.calls.push(text) : [];
    if (ending) events.push(...this.calls.finish());
    return toDeltas(events.filter((ev) => ev.type === "content" || ev.index < this.maxCalls));
  }
}

function reasoning(text: string): ChatDelta[] {
  return text ? [{ reasoning_content: text }] : [];
}

/** Tool events as OpenAI streams them: the call (id, type, name, empty arguments), then argument
 * pieces; neighbouring pieces of the same kind are joined. */
function toDeltas(events: ToolEvent[]): ChatDelta[] {
  const out: ChatDelta[] = [];
  for (const ev of events) {
    const last = out.at(-1);
    if (ev.type === "content") {
      if (last?.content !== undefined) last.content += ev.text;
      else out.push({ content: ev.text });
    } else if (ev.type === "call") {
      out.push({ tool_calls: [{ index: ev.index, id: ev.id, type: "function", function: { name: ev.name, arguments: "" } }] });
    } else {
      const prev = last?.tool_calls?.[0];
      if (prev && prev.index === ev.index && prev.id === undefined) prev.function.arguments += ev.text;
      else out.push({ tool_calls: [{ index: ev.index, function: { arguments: ev.text } }] });
    }
  }
  return out;
}

export interface ToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

export interface AssistantMessage {
  role: "assistant";
  content: string | null;
  reasoning_content?: string | null;
  tool_calls?: ToolCall[];
}

/** The deltas of a whole output, joined into one message. */
export function joinDeltas(deltas: ChatDelta[], withReasoning: boolean): AssistantMessage {
  let content = "";
  let thought: string | null = null;
  const calls: ToolCall[] = [];
  for (const d of deltas) {
    if (d.content !== undefined) content += d.content;
    if (d.reasoning_content !== undefined) thought = (thought ?? "") + d.reasoning_content;
    for (const t of d.tool_calls ?? []) {
      if (t.id !== undefined) calls[t.index] = { id: t.id, type: "function", function: { name: t.function.name ?? "", arguments: "" } };
      calls[t.index]!.function.arguments += t.function.arguments;
    }
  }
  const message: AssistantMessage = { role: "assistant", content: calls.length > 0 && !content ? null : content };
  if (withReasoning) message.reasoning_content = thought;
  if (calls.length > 0) message.tool_calls = calls;
  return message;
}

/** OpenAI's finish_reason when the model stopped after calling tools. */
export function chatFinishReason(reason: "stop" | "length", toolCalls: number): "stop" | "length" | "tool_calls" {
  return reason === "stop" && toolCalls > 0 ? "tool_calls" : reason;
}
