// One wrapper that says when a response body has ended, for the middleware that must know (the
// drain counts in-flight streams until their last byte; the access log writes its line then).

export type Ending = "end" | "error" | "cancel";

/** The same bytes, calling `done` once when the stream ends, fails or is cancelled. Pulls only when
 * read (highWaterMark 0), so a slow client still slows generation. */
export function onEnd(body: ReadableStream<Uint8Array>, done: (how: Ending) => void): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let called = false;
  const once = (how: Ending) => {
    if (called) return;
    called = true;
    done(how);
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const r = await reader.read();
        if (r.done) {
          controller.close();
          once("end");
        } else {
          controller.enqueue(r.value);
        }
      } catch (err) {
        once("error");
        controller.error(err);
      }
    },
    cancel(reason) {
      once("cancel");
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}
