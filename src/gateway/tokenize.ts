// POST /tokenize and POST /detokenize, shaped as vLLM's (entrypoints/openai/protocol.py: Tokenize-
// CompletionRequest, TokenizeChatRequest, TokenizeResponse, DetokenizeRequest, DetokenizeResponse):
// a client counts or inspects the tokens of a prompt exactly as the completion endpoints would
// build them (same encoder: small prompts inline, big ones in the tokenizer pool; same template).
import type { Context, Hono } from "hono";
import { z } from "zod";
import { templateMessage } from "./chat.ts";
import type { GatewayEnv } from "./env.ts";
import { jsonOnly } from "./middleware/content-type.ts";
import { checkModel, checkTokenIds, encodePrompt, type GatewayDeps, readJson } from "./request.ts";
import { ChatCompletionRequest } from "./schemas.ts";

const tokenId = z.number().int().min(0);
const chat = ChatCompletionRequest.shape;

const TokenizeCompletionRequest = z.object({
  model: z.string().nullish(),
  prompt: z.string(),
  add_special_tokens: z.boolean().nullish(), // default true (the tokenizer's BOS)
  return_token_strs: z.boolean().nullish(),
});

const TokenizeChatRequest = z.object({
  model: z.string().nullish(),
  messages: chat.messages,
  add_generation_prompt: z.boolean().nullish(), // default true
  // the template writes BOS itself; vLLM's default (false) is the only one honoured
  add_special_tokens: z.boolean().nullish(),
  continue_final_message: z.literal(false).nullish(),
  chat_template_kwargs: chat.chat_template_kwargs,
  tools: chat.tools,
  return_token_strs: z.boolean().nullish(),
});

const DetokenizeRequest = z.object({
  model: z.string().nullish(),
  tokens: z.array(tokenId),
});

/** The prompt's ids, built as /v1/completions (prompt) or /v1/chat/completions (messages) builds them. */
function promptIds(deps: GatewayDeps, raw: unknown): Promise<{ ids: number[]; strs: boolean }> {
  const isChat = typeof raw === "object" && raw !== null && "messages" in raw;
  if (!isChat) {
    const b = TokenizeCompletionRequest.parse(raw);
    checkModel(b.model, deps.servedModelName);
    return encodePrompt(deps, { kind: "text", text: b.prompt, addSpecialTokens: b.add_special_tokens ?? true }, "prompt")
      .then((ids) => ({ ids, strs: b.return_token_strs ?? false }));
  }
  const b = TokenizeChatRequest.parse(raw);
  checkModel(b.model, deps.servedModelName);
  return encodePrompt(deps, {
    kind: "chat", messages: b.messages.map(templateMessage), addGenerationPrompt: b.add_generation_prompt ?? true,
    tools: b.tools?.length ? b.tools : null, kwargs: b.chat_template_kwargs,
  }, "messages").then((ids) => ({ ids, strs: b.return_token_strs ?? false }));
}

async function tokenize(c: Context<GatewayEnv>, deps: GatewayDeps): Promise<Response> {
  const { ids, strs } = await promptIds(deps, await readJson(c));
  return c.json({
    count: ids.length,
    max_model_len: deps.info.max_model_len,
    tokens: ids,
    ...(strs ? { token_strs: ids.map((id) => deps.codec.decode([id], { skipSpecialTokens: false })) } : {}),
  });
}

async function detokenize(c: Context<GatewayEnv>, deps: GatewayDeps): Promise<Response> {
  const b = DetokenizeRequest.parse(await readJson(c));
  checkModel(b.model, deps.servedModelName);
  checkTokenIds(b.tokens, deps.info, "tokens");
  return c.json({ prompt: deps.codec.decode(b.tokens, { skipSpecialTokens: false }) });
}

/** Mounts the two routes; the caller puts its middleware (auth, deadline, body limit) in front. */
export function tokenizeRoutes(app: Hono<GatewayEnv>, deps: GatewayDeps): void {
  app.post("/tokenize", jsonOnly(), (c) => tokenize(c, deps));
  app.post("/detokenize", jsonOnly(), (c) => detokenize(c, deps));
}
