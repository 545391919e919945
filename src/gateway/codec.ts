// The subset of the tokenizer the gateway uses. `src/tokenizer`'s Tokenizer satisfies it structurally,
// and so can any test double.

export interface ChatTemplateMessage {
  role: string;
  content: string;
  [extra: string]: unknown; // e.g. tool_calls / tool_call_id, passed through to the template
}

export interface TextCodec {
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  decode(ids: number[], opts?: { skipSpecialTokens?: boolean }): string;
  applyChatTemplate(
    messages: ChatTemplateMessage[],
    opts: { addGenerationPrompt: boolean; tools?: unknown },
  ): string;
}
