// Entry script of a Bun Worker host (WorkerTransport). The registry module comes with the Worker
// itself (workerData, set by the transport that created it); frames only bring data, checked by
// serveHost before they act.
import { workerData } from "node:worker_threads";
import { decode } from "./codec.ts";
import { hostSpecOf } from "./host-spec.ts";
import { serveHost } from "./serve-host.ts";
import { postFrame } from "./worker-transport.ts";

declare const self: Worker;

try {
  const spec = hostSpecOf(workerData, "workerData");
  serveHost({
    send: (f) => postFrame(self, f),
    onFrame: (cb) => {
      self.onmessage = (e: MessageEvent) => {
        let value: unknown;
        try {
          value = decode(e.data as Uint8Array);
        } catch (err) {
          return console.error(`[frames] dropped an undecodable frame from the system: ${(err as Error).message}`);
        }
        cb(value);
      };
    },
  }, spec);
} catch (err) {
  // Not a crash to restart from: the same spec would fail again.
  postFrame(self, { t: "fatal", error: (err as Error).message });
}
