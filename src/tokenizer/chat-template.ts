// Renders a Hugging Face `chat_template` (Jinja) the way transformers' apply_chat_template does.
import { Template } from "@huggingface/jinja";
import { templateReadsTools, toolSystemPrompt } from "./tool-prompt.ts";

export interface ChatMessage {
  role: string;
  content: string | null;
  tool_calls?: unknown;
  name?: string;
  tool_call_id?: string;
}

export interface ChatTemplateOptions {
  addGenerationPrompt: boolean;
  /** OpenAI's `tools` list, handed to the template as `tools`. */
  tools?: unknown[] | null;
  /** A request's `chat_template_kwargs` (e.g. `{thinking: true}` for DeepSeek-V3.1): extra template
   * variables, as transformers passes them; they cannot replace messages, tools or the special tokens. */
  kwargs?: Record<string, unknown> | null;
}

type NamedTemplate = { name: string; template: string };

/** Picks the template the way transformers does: a plain string, or a named list with "default" / "tool_use". */
function pickTemplate(raw: unknown, wantTools: boolean): string | null {
  if (typeof raw === "string") return raw;
  if (!Array.isArray(raw)) return null;
  const named = raw.filter(
    (t): t is NamedTemplate => typeof t?.name === "string" && typeof t?.template === "string",
  );
  const byName = (n: string) => named.find((t) => t.name === n)?.template;
  return (wantTools ? byName("tool_use") : undefined) ?? byName("default") ?? named[0]?.template ?? null;
}

/**
 * Templates test `'tool_calls' in message`, so a key that is present but undefined/null would send a
 * plain reply down the tool-call branch: drop such keys. A null content without tool calls is rendered
 * as "" (Python would raise on `str + None`; an API client sending null there means "nothing").
 */
function normalizeMessage(m: ChatMessage): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(m)) if (v !== undefined && !(k === "tool_calls" && v === null)) out[k] = v;
  if (Array.isArray(out.tool_calls) && out.tool_calls.length === 0) delete out.tool_calls;
  if (out.content === null && out.tool_calls === undefined) out.content = "";
  if (!("content" in out)) out.content = out.tool_calls === undefined ? "" : null;
  // DeepSeek's templates render the calls of an assistant turn only when its content is none, and
  // OpenAI clients send "" as often as null there
  if (out.tool_calls !== undefined && out.content === "") out.content = null;
  // templates concatenate the arguments as a string (OpenAI's form); some clients send an object
  if (Array.isArray(out.tool_calls)) out.tool_calls = out.tool_calls.map(stringArguments);
  return out;
}

function stringArguments(call: unknown): unknown {
  const f = (call as { function?: { arguments?: unknown } } | null)?.function;
  if (!f || typeof f.arguments === "string" || f.arguments === undefined) return call;
  return { ...(call as object), function: { ...f, arguments: JSON.stringify(f.arguments) } };
}

/** With a template that cannot show `tools`, they go in a system message of their own, after the
 * conversation's own system messages (DeepSeek's templates join those with a blank line). */
function withToolPrompt(messages: ChatMessage[], tools: unknown[]): ChatMessage[] {
  let at = 0;
  while (at < messages.length && messages[at]!.role === "system") at++;
  return [...messages.slice(0, at), { role: "system", content: toolSystemPrompt(tools) }, ...messages.slice(at)];
}

export class ChatTemplate {
  private readonly compiled = new Map<string, Template>();

  constructor(
    private readonly raw: unknown,
    private readonly specials: { bos_token: string; eos_token: string; pad_token?: string },
    readonly source: string, // the file it came from, for the operator
  ) {}

  get available(): boolean {
    return pickTemplate(this.raw, false) !== null;
  }

  render(messages: ChatMessage[], opts: ChatTemplateOptions): string {
    const tools = opts.tools && opts.tools.length > 0 ? opts.tools : null;
    const text = pickTemplate(this.raw, tools !== null);
    // these errors reach API clients, so they name no file of ours
    if (text === null) throw new Error("the model's tokenizer_config.json has no chat_template");
    let tpl = this.compiled.get(text);
    if (!tpl) {
      try {
        tpl = new Template(text);
      } catch (e) {
        throw new Error(`the model's chat_template does not parse: ${(e as Error).message}`);
      }
      this.compiled.set(text, tpl);
    }
    // raise_exception is a builtin of @huggingface/jinja (it throws an Error with the message).
    const shown = tools !== null && !templateReadsTools(text) ? withToolPrompt(messages, tools) : messages;
    const ctx: Record<string, unknown> = {
      ...(opts.kwargs ?? {}),
      messages: shown.map(normalizeMessage),
      add_generation_prompt: opts.addGenerationPrompt,
      ...this.specials,
    };
    if (tools !== null) ctx.tools = tools;
    else delete ctx.tools;
    return tpl.render(ctx);
  }
}
