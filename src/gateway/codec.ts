// The subset of the tokenizer the gateway uses. `src/tokenizer`'s Tokenizer satisfies it structurally,
// and so can any test double.

export interface ChatTemplateMessage {
  role: string;
  content: string;
  // passed through to the template (assistant tool calls, tool results)
  tool_calls?: unknown;
  tool_call_id?: string;
  name?: string;
}

export interface TextCodec {
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  decode(ids: number[], opts?: { skipSpecialTokens?: boolean }): string;
  applyChatTemplate(
    messages: ChatTemplateMessage[],
    opts: { addGenerationPrompt: boolean; tools?: unknown[] | null; kwargs?: Record<string, unknown> | null },
  ): string;
  /** The most input bytes one token covers (see src/tokenizer/bound.ts); absent = no byte bound. */
  readonly maxTokenBytes?: number;
  // what constrained decoding reads (src/grammar's TokenSource); a codec without them cannot constrain
  idToToken?(id: number): string | undefined;
  isSpecial?(id: number): boolean;
  readonly vocabSize?: number;
}
