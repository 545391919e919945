// POST /v1/completions: a prompt as text, texts, token ids or lists of token ids; n choices per prompt
// (choice index = prompt index * n + i, as vLLM numbers them); `echo` puts the prompt (and with
// logprobs, its prompt logprobs) in front of the completion.
import type { Context } from "hono";
import { answer, type Head, responseHead } from "./answer.ts";
import { merge, startChoices } from "./choices.ts";
import type { GatewayEnv } from "./env.ts";
import { CompletionLogprobsBuilder, concatLogprobs, type TokenNamer, tokenNamer, usage } from "./format.ts";
import type { Choice } from "./generation.ts";
import {
  checkModel, checkTokenIds, choiceSpecs, encodePrompt, type GatewayDeps, readJson, resolveMaxTokens, samplingParams, stopStrings,
} from "./request.ts";
import { CompletionRequest } from "./schemas.ts";

interface Prompt {
  ids: number[];
  text: string | null; // null for token-id prompts: decoded only if echoed
}

async function toPrompts(deps: GatewayDeps, p: CompletionRequest["prompt"]): Promise<Prompt[]> {
  const fromText = async (text: string) =>
    ({ ids: await encodePrompt(deps, { kind: "text", text, addSpecialTokens: true }, "prompt"), text });
  if (typeof p === "string") return [await fromText(p)];
  if (typeof p[0] === "number") return [{ ids: p as number[], text: null }];
  return Promise.all((p as (string | number[])[]).map((x) => (typeof x === "string" ? fromText(x) : { ids: x, text: null })));
}

export async function completions(c: Context<GatewayEnv>, deps: GatewayDeps): Promise<Response> {
  const startMs = performance.now();
  const body = CompletionRequest.parse(await readJson(c));
  checkModel(body.model, deps.servedModelName);
  const prompts = await toPrompts(deps, body.prompt);
  const n = body.n ?? 1;
  const logprobs = body.logprobs ?? null;
  const echo = body.echo ?? false;
  const engineInputs = prompts.map((p) => {
    checkTokenIds(p.ids, deps.info, "prompt");
    const maxTokens = resolveMaxTokens(p.ids.length, body.max_tokens ?? null, deps.info, "prompt");
    return { ids: p.ids, params: samplingParams(body, maxTokens, logprobs, echo && logprobs !== null, deps.info, deps.codec) };
  });
  const skipSpecial = body.skip_special_tokens ?? true;
  const specs = choiceSpecs(c, deps, engineInputs, n, stopStrings(body.stop), skipSpecial, startMs);
  const choices = await startChoices(deps.engine, deps.codec, specs);
  const head = responseHead(c, deps, "cmpl");
  const promptOf = (k: number) => prompts[Math.floor(k / n)]!;
  const echoText = (p: Prompt) => (echo ? p.text ?? deps.codec.decode(p.ids, { skipSpecialTokens: skipSpecial }) : "");
  const promptTokens = prompts.reduce((s, p) => s + p.ids.length, 0);
  const name = tokenNamer(deps.codec, body.return_tokens_as_token_ids ?? false);
  const includeUsage = body.stream_options?.include_usage ?? false;
  return answer(c, deps, {
    startMs, choices, stream: body.stream ?? false,
    chunks: () => streamChunks({ name, head, choices, promptOf, echoText, promptTokens, promptCount: prompts.length, logprobs: logprobs !== null, includeUsage }),
    whole: (done) => ({
      ...head,
      object: "text_completion",
      choices: done.map((d, index) => {
        const lp = new CompletionLogprobsBuilder(name);
        const parts = echo && d.promptLogprobs ? [lp.prompt(promptOf(index).ids, d.promptLogprobs)] : [];
        return {
          index,
          text: echoText(promptOf(index)) + d.text,
          logprobs: logprobs !== null ? concatLogprobs([...parts, lp.generated(d.tokens)]) : null,
          finish_reason: d.finishReason,
        };
      }),
      usage: usage(promptTokens, done.reduce((s, d) => s + d.completionTokens, 0), cachedPerPrompt(done.map((d) => d.cachedTokens), n)),
    }),
  });
}

interface StreamCtx {
  name: TokenNamer;
  head: Head;
  choices: Choice[];
  promptOf(k: number): Prompt;
  echoText(p: Prompt): string;
  promptTokens: number;
  promptCount: number;
  logprobs: boolean;
  includeUsage: boolean;
}

async function* streamChunks(ctx: StreamCtx): AsyncGenerator<unknown> {
  const base = { ...ctx.head, object: "text_completion", ...(ctx.includeUsage ? { usage: null } : {}) };
  const chunk = (index: number, text: string, logprobs: unknown, finish_reason: string | null) =>
    ({ ...base, choices: [{ index, text, logprobs, finish_reason }] });
  const builders = ctx.choices.map(() => new CompletionLogprobsBuilder(ctx.name));
  const echoed = ctx.choices.map(() => false);
  let completionTokens = 0;
  const cached = ctx.choices.map(() => 0);
  try {
    for await (const [k, ev] of merge(ctx.choices.map((ch) => ch.events()))) {
      const prompt = ctx.promptOf(k);
      if (!echoed[k]) {
        echoed[k] = true;
        const text = ctx.echoText(prompt);
        const lp = ev.type === "prompt" && ctx.logprobs ? builders[k]!.prompt(prompt.ids, ev.logprobs) : null;
        if (text || lp) yield chunk(k, text, lp, null);
      }
      if (ev.type === "delta") {
        yield chunk(k, ev.text, ctx.logprobs ? builders[k]!.generated(ev.tokens) : null, null);
      } else if (ev.type === "finish") {
        completionTokens += ev.completionTokens;
        cached[k] = ev.cachedTokens;
        yield chunk(k, "", null, ev.reason);
      }
    }
    if (ctx.includeUsage) yield { ...base, choices: [], usage: usage(ctx.promptTokens, completionTokens, cachedPerPrompt(cached, ctx.choices.length / ctx.promptCount)) };
  } finally {
    for (const ch of ctx.choices) ch.abort();
  }
}

/** Cached prompt tokens of a request: per prompt (its n choices in a row), the most any choice found. */
function cachedPerPrompt(cached: readonly number[], n: number): number {
  let total = 0;
  for (let i = 0; i < cached.length; i += n) total += Math.max(0, ...cached.slice(i, i + n));
  return total;
}
