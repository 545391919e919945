// Operations over the several choices of one request (n > 1, or several prompts): start them all or
// none, interleave their streams, or collect them whole.
import type { Engine } from "../engine/types.ts";
import type { TextCodec } from "./codec.ts";
import { Choice, type ChoiceSpec, type TokenInfo } from "./generation.ts";

/** Starts all choices of a request; the first refusal cancels the others (even those still queued)
 * and is what the request answers with. */
export async function startChoices(engine: Engine, codec: TextCodec, specs: ChoiceSpec[]): Promise<Choice[]> {
  const group = new AbortController();
  let refusal: { err: unknown } | null = null;
  const settled = await Promise.allSettled(specs.map((s) =>
    Choice.start(engine, codec, { ...s, signal: AbortSignal.any([s.signal, group.signal]) }).catch((err) => {
      refusal ??= { err };
      group.abort();
      throw err;
    })));
  if (refusal === null) return settled.map((s) => (s as PromiseFulfilledResult<Choice>).value);
  for (const s of settled) if (s.status === "fulfilled") s.value.abort();
  throw (refusal as { err: unknown }).err;
}

/** Interleaves several event streams as events arrive, tagging each with its source index. */
export async function* merge<T>(sources: AsyncIterator<T>[]): AsyncGenerator<[number, T]> {
  type Next = { i: number; r: IteratorResult<T> };
  const pending = new Map<number, Promise<Next>>();
  const pull = (i: number) => {
    const p = sources[i]!.next().then((r) => ({ i, r }));
    p.catch(() => {}); // read ahead: it may fail while our consumer is paused; the next race reports it
    pending.set(i, p);
  };
  sources.forEach((_, i) => pull(i));
  try {
    while (pending.size > 0) {
      const { i, r } = await Promise.race(pending.values());
      if (r.done) {
        pending.delete(i);
        continue;
      }
      pull(i);
      yield [i, r.value];
    }
  } finally {
    for (const i of pending.keys()) void sources[i]!.return?.(undefined)?.catch(() => {});
  }
}

export interface CollectedChoice {
  text: string;
  tokens: TokenInfo[];
  promptLogprobs: (number | null)[] | null;
  finishReason: "stop" | "length";
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
}

async function collectOne(choice: Choice): Promise<CollectedChoice> {
  const out: CollectedChoice = { text: "", tokens: [], promptLogprobs: null, finishReason: "length", promptTokens: 0, completionTokens: 0, cachedTokens: 0 };
  for await (const ev of choice.events()) {
    if (ev.type === "prompt") out.promptLogprobs = ev.logprobs;
    else if (ev.type === "delta") {
      out.text += ev.text;
      out.tokens.push(...ev.tokens);
    } else {
      out.finishReason = ev.reason;
      out.promptTokens = ev.promptTokens;
      out.completionTokens = ev.completionTokens;
      out.cachedTokens = ev.cachedTokens;
    }
  }
  return out;
}

/** Runs every choice to its end (non-streaming); the first failure cancels the rest. */
export async function collectAll(choices: Choice[]): Promise<CollectedChoice[]> {
  try {
    return await Promise.all(choices.map(collectOne));
  } finally {
    for (const c of choices) c.abort();
  }
}
