// Server-sent events in OpenAI's framing: `data: <json>\n\n` per chunk, `data: [DONE]\n\n` at the end.
// The stream pulls one chunk at a time from a generator (so a slow client slows generation instead of
// buffering it), reports a failure after the headers as an OpenAI-shaped error event, and treats the
// body being cancelled (client gone) as a reason to cancel the engine sequences behind it.
import { toApiError } from "./errors.ts";

const encoder = new TextEncoder();
const DONE = encoder.encode("data: [DONE]\n\n");

function frame(data: unknown): Uint8Array {
  return encoder.encode(`data: ${JSON.stringify(data)}\n\n`);
}

export interface SseHooks {
  onCancel(): void; // the client went away
  onEnd(): void; // the stream ended, for whatever reason (called once)
}

export function sseResponse(chunks: AsyncGenerator<unknown>, hooks: SseHooks): Response {
  let ended = false;
  const end = () => {
    if (!ended) {
      ended = true;
      hooks.onEnd();
    }
  };
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (ended) return;
      try {
        const r = await chunks.next();
        if (ended) return;
        if (r.done) {
          controller.enqueue(DONE);
          controller.close();
          end();
        } else {
          controller.enqueue(frame(r.value));
        }
      } catch (err) {
        if (ended) return;
        const api = toApiError(err);
        if (api.isServerFault) console.error("[gateway] stream failed:", err); // the client sees only api.body()
        controller.enqueue(frame(api.body()));
        controller.enqueue(DONE);
        controller.close();
        end();
      }
    },
    cancel() {
      if (ended) return;
      end();
      hooks.onCancel();
      void chunks.return(undefined).catch(() => {});
    },
  });
  return new Response(body, {
    status: 200,
    headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", connection: "keep-alive" },
  });
}
