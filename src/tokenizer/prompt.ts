// Turning a request's prompt into token ids, bounded: a text that cannot fit `limit` tokens (judged
// from its bytes, see bound.ts) is refused before it is tokenized. The same job runs in a tokenizer
// worker (pool.ts) or inline; the gateway sees only the PromptEncoder interface.
import { fewestTokens } from "./bound.ts";
import type { ChatMessage, ChatTemplateOptions } from "./chat-template.ts";

export type PromptSource =
  | { kind: "text"; text: string; addSpecialTokens: boolean }
  | { kind: "chat"; messages: ChatMessage[]; addGenerationPrompt: boolean; tools?: unknown[] | null; kwargs?: Record<string, unknown> | null };
/** `limit`: the context length; a prompt of `limit` tokens or more cannot be served. */
export type EncodeJob = PromptSource & { limit: number };

export type EncodeResult =
  | { ok: true; ids: number[] }
  | { ok: false; reason: "too_long"; atLeast: number } // at least this many tokens, >= limit
  | { ok: false; reason: "template"; message: string }; // the chat template refused the messages

export interface PromptEncoder {
  encode(job: EncodeJob): Promise<EncodeResult>;
}

/** What a job needs of a tokenizer (the gateway's TextCodec and src/tokenizer's Tokenizer fit). */
export interface JobCodec {
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  applyChatTemplate(messages: ChatMessage[], opts: ChatTemplateOptions): string;
  readonly maxTokenBytes?: number;
}

export function runEncodeJob(codec: JobCodec, job: EncodeJob): EncodeResult {
  let text: string;
  if (job.kind === "chat") {
    try {
      text = codec.applyChatTemplate(job.messages, { addGenerationPrompt: job.addGenerationPrompt, tools: job.tools, kwargs: job.kwargs });
    } catch (err) {
      return { ok: false, reason: "template", message: (err as Error).message };
    }
  } else {
    text = job.text;
  }
  const atLeast = fewestTokens(text, codec.maxTokenBytes ?? Infinity);
  if (atLeast >= job.limit) return { ok: false, reason: "too_long", atLeast };
  // the template already wrote BOS
  return { ok: true, ids: codec.encode(text, { addSpecialTokens: job.kind === "text" && job.addSpecialTokens }) };
}

/** Runs jobs on the calling thread: for tests and tools; a server uses a TokenizerPool. */
export function inlineEncoder(codec: JobCodec): PromptEncoder {
  return { encode: async (job) => runEncodeJob(codec, job) };
}

/** The characters a job hands the tokenizer, near enough (a chat template adds a little). */
function jobChars(job: EncodeJob): number {
  if (job.kind === "text") return job.text.length;
  // tools are rendered into the prompt too (their schemas can be long)
  const tools = job.tools?.length ? JSON.stringify(job.tools).length : 0;
  return job.messages.reduce((n, m) => n + (m.content?.length ?? 0), tools);
}

/** Small prompts inline (a worker round trip costs more than tokenizing ~2 KB, and they must not
 * queue behind a huge prompt in a busy worker), the rest in `large` (a TokenizerPool). */
export function sizedEncoder(small: PromptEncoder, large: PromptEncoder, maxInlineChars = 2048): PromptEncoder {
  return { encode: (job) => (jobChars(job) <= maxInlineChars ? small : large).encode(job) };
}
