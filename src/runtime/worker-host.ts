// Entry script of a Bun Worker host (WorkerTransport). The registry module comes with the Worker
// itself (workerData, set by the transport that created it); frames only bring data, checked by
// serveHost before they act. Besides frames (bytes), the transport sends notes about peer
// Workers: a MessagePort to one (a direct channel, direct.ts) or that one is down.
import { workerData } from "node:worker_threads";
import { z } from "zod";
import { decode } from "./codec.ts";
import { DIRECT_STATS } from "./direct.ts";
import { hostSpecOf } from "./host-spec.ts";
import { serveHost } from "./serve-host.ts";
import { postFrame } from "./worker-transport.ts";

declare const self: Worker;

const peerNote = z.union([
  z.strictObject({ peer: z.string().min(1).max(512), port: z.instanceof(MessagePort) }),
  z.strictObject({ peerDown: z.string().min(1).max(512) }),
]);

try {
  const spec = hostSpecOf(workerData, "workerData");
  let onFrame: (value: unknown) => void = () => {};
  const peers = serveHost({ send: (f) => postFrame(self, f), onFrame: (cb) => (onFrame = cb) }, spec);
  (globalThis as Record<symbol, unknown>)[DIRECT_STATS] = peers.stats;
  self.onmessage = (e: MessageEvent) => {
    if (!(e.data instanceof Uint8Array)) {
      const note = peerNote.safeParse(e.data);
      if (!note.success) return console.error(`[frames] dropped a note from the system that is neither a frame nor a peer note`);
      if ("port" in note.data) peers.add(note.data.peer, note.data.port);
      else peers.drop(note.data.peerDown);
      return;
    }
    let value: unknown;
    try {
      value = decode(e.data);
    } catch (err) {
      return console.error(`[frames] dropped an undecodable frame from the system: ${(err as Error).message}`);
    }
    onFrame(value);
  };
} catch (err) {
  // Not a crash to restart from: the same spec would fail again.
  postFrame(self, { t: "fatal", error: (err as Error).message });
}
