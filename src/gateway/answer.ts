// What /v1/completions and /v1/chat/completions share once their choices run: the response head,
// then either one SSE stream of the choices' chunks or, when every choice is done, one JSON body.
// Either way the request's end-to-end latency is observed once, when its last byte is out.
//
//   responseHead(c, deps, prefix) -> Head; answer(c, deps, {startMs, choices, stream, chunks, whole})
import type { Context } from "hono";
import { type CollectedChoice, collectAll } from "./choices.ts";
import type { GatewayEnv } from "./env.ts";
import { createdNow } from "./format.ts";
import type { Choice } from "./generation.ts";
import type { GatewayDeps } from "./request.ts";
import { sseResponse } from "./sse.ts";

export interface Head {
  id: string;
  created: number;
  model: string;
}

/** `prefix` is OpenAI's: "cmpl" or "chatcmpl"; the id carries the request id, so logs and answers meet. */
export function responseHead(c: Context<GatewayEnv>, deps: GatewayDeps, prefix: string): Head {
  return { id: `${prefix}-${c.get("requestId")}`, created: createdNow(), model: deps.servedModelName };
}

export interface Answer {
  startMs: number;
  choices: Choice[];
  stream: boolean;
  /** The SSE chunks (made only when streaming). */
  chunks(): AsyncGenerator<unknown>;
  /** The JSON body once every choice is done (made only when not streaming). */
  whole(done: CollectedChoice[]): object;
}

export async function answer(c: Context<GatewayEnv>, deps: GatewayDeps, a: Answer): Promise<Response> {
  const observeE2e = () => deps.metrics.e2e.observe((performance.now() - a.startMs) / 1000);
  if (a.stream) return sseResponse(a.chunks(), { onCancel: () => a.choices.forEach((ch) => ch.abort()), onEnd: observeE2e });
  const done = await collectAll(a.choices);
  observeE2e();
  return c.json(a.whole(done));
}
