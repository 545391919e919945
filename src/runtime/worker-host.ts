// Entry script of a Bun Worker host (WorkerTransport). The worker imports the registry module
// named in the init frame itself; everything else is serveHost.
import { decode } from "./codec.ts";
import type { Frame } from "./frames.ts";
import { serveHost } from "./serve-host.ts";
import { postFrame } from "./worker-transport.ts";

declare const self: Worker;

serveHost({
  send: (f) => postFrame(self, f),
  onFrame: (cb) => {
    self.onmessage = (e: MessageEvent) => cb(decode(e.data as Uint8Array) as Frame);
  },
});
