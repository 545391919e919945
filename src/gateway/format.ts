// OpenAI's response shapes for logprobs and usage.
import type { TopLogprob } from "../engine/types.ts";
import type { TextCodec } from "./codec.ts";
import type { TokenInfo } from "./generation.ts";

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details?: { cached_tokens: number }; // prompt tokens the prefix cache gave
}

export function usage(prompt: number, completion: number, cached = 0): Usage {
  const u: Usage = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
  if (cached > 0) u.prompt_tokens_details = { cached_tokens: cached };
  return u;
}

export function createdNow(): number {
  return Math.floor(Date.now() / 1000);
}

/** How a token is spelled in logprobs: its text, or `token_id:N` (vLLM's return_tokens_as_token_ids,
 * for clients that need exact ids, e.g. to compare with reference outputs). */
export type TokenNamer = (id: number) => string;

export function tokenNamer(codec: TextCodec, asIds: boolean): TokenNamer {
  return asIds ? (id) => `token_id:${id}` : (id) => codec.decode([id], { skipSpecialTokens: false });
}

function bytes(s: string): number[] {
  return Array.from(new TextEncoder().encode(s));
}

export interface ChatTokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}

export function chatLogprobs(name: TokenNamer, tokens: TokenInfo[]): { content: ChatTokenLogprob[] } {
  const entry = (id: number, logprob: number) => {
    const token = name(id);
    return { token, logprob, bytes: bytes(token) };
  };
  return {
    content: tokens.map((t) => ({
      ...entry(t.id, t.logprob ?? 0),
      top_logprobs: (t.top ?? []).map((x: TopLogprob) => entry(x.id, x.logprob)),
    })),
  };
}

export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[];
  text_offset: number[];
}

/** Legacy completions logprobs; keeps the running text offset across stream chunks. */
export class CompletionLogprobsBuilder {
  private offset = 0;

  constructor(private readonly name: TokenNamer) {}

  private build(entries: { id: number; logprob: number | null; top: TopLogprob[] | null }[]): CompletionLogprobs {
    const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
    for (const e of entries) {
      const token = this.name(e.id);
      out.tokens.push(token);
      out.token_logprobs.push(e.logprob);
      out.top_logprobs.push(e.top ? Object.fromEntries(e.top.map((x) => [this.name(x.id), x.logprob])) : null);
      out.text_offset.push(this.offset);
      this.offset += token.length;
    }
    return out;
  }

  /** Prompt tokens (echo): the engine gives each one's logprob, the first has none. */
  prompt(ids: number[], logprobs: (number | null)[]): CompletionLogprobs {
    return this.build(ids.map((id, i) => {
      const lp = logprobs[i] ?? null;
      return { id, logprob: lp, top: lp === null ? null : [{ id, logprob: lp }] };
    }));
  }

  generated(tokens: TokenInfo[]): CompletionLogprobs {
    return this.build(tokens.map((t) => ({ id: t.id, logprob: t.logprob ?? null, top: t.top ?? [] })));
  }
}

export function concatLogprobs(parts: CompletionLogprobs[]): CompletionLogprobs {
  return {
    tokens: parts.flatMap((p) => p.tokens),
    token_logprobs: parts.flatMap((p) => p.token_logprobs),
    top_logprobs: parts.flatMap((p) => p.top_logprobs),
    text_offset: parts.flatMap((p) => p.text_offset),
  };
}
