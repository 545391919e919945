// Transport "worker:N": one Bun Worker per location, running worker-host.ts. Frames cross as
// msgpack bytes whose ArrayBuffer is transferred, not copied (encodeOwned), and are decoded on
// arrival as views on that buffer. The registry goes to the Worker as workerData when it is
// created; what the Worker sends back is checked (frames.ts) before the system sees it.
//
// Direct channels (direct.ts; on unless MOE_DIRECT_CHANNELS=0): every two Workers of this
// transport whose hosts are ready share a MessageChannel, handed out when the later one says
// ready (after the system has heard it: it routes that host's actors home from then on); when a
// Worker dies or is stopped, every other one hears "peer down" at once, before anything else
// this thread sends it, and drops the port (asks in flight there go through the system).
import { encodeOwned } from "./codec.ts";
import { type Frame, decodeFrame, isBad, logDropped } from "./frames.ts";
import type { HostSpec, Link, Transport } from "./transport.ts";

const ENTRY = new URL("./worker-host.ts", import.meta.url).href;

/** Direct channels between Workers, unless MOE_DIRECT_CHANNELS=0 (then every ask takes two hops). */
export function directChannels(): boolean {
  return process.env.MOE_DIRECT_CHANNELS !== "0";
}

export function postFrame(target: { postMessage(m: unknown, transfer: ArrayBuffer[]): void }, f: Frame): void {
  const bytes = encodeOwned(f);
  target.postMessage(bytes, [bytes.buffer as ArrayBuffer]);
}

/** What the transport tells a Worker about its peers (not a frame: a port cannot be msgpack). */
export type PeerNote = { peer: string; port: MessagePort } | { peerDown: string };

export class WorkerTransport implements Transport {
  readonly scheme = "worker";
  private readonly ready = new Map<string, Worker>(); // location -> its Worker, once ready
  private readonly direct = directChannels();

  open(location: string, host: HostSpec): Link {
    const worker = new Worker(ENTRY, { name: location, workerData: { registry: host.registry } } as WorkerOptions);
    let exitCb: (reason: string) => void = () => {};
    let state: "open" | "closed" | "dead" = "open";
    const gone = () => this.gone(location, worker);
    const died = (reason: string) => {
      if (state !== "open") return;
      state = "dead";
      gone();
      exitCb(reason);
    };
    worker.addEventListener("close", (e) => died(`exited with code ${(e as CloseEvent).code ?? "?"}`));
    worker.addEventListener("error", (e) => {
      // An uncaught error leaves the worker in an unknown state: treat it as a crash.
      died(`uncaught error: ${(e as ErrorEvent).message}`);
      worker.terminate();
    });
    return {
      send: (f) => {
        if (state === "open") postFrame(worker, f);
      },
      onFrame: (cb) => {
        worker.onmessage = (e: MessageEvent) => {
          const f = decodeFrame(e.data as Uint8Array, "system");
          if (isBad(f)) return logDropped(location, f);
          cb(f);
          if (f.t === "ready" && state === "open") this.up(location, worker);
        };
      },
      onExit: (cb) => (exitCb = cb),
      kill: (reason = "terminated") => {
        died(reason);
        worker.terminate();
      },
      close: () => {
        if (state === "open") state = "closed";
        gone();
        worker.terminate();
      },
    };
  }

  private up(location: string, worker: Worker): void {
    if (!this.direct) return;
    for (const [peer, other] of this.ready) {
      if (peer === location) continue;
      const ch = new MessageChannel();
      worker.postMessage({ peer, port: ch.port1 } satisfies PeerNote, [ch.port1]);
      other.postMessage({ peer: location, port: ch.port2 } satisfies PeerNote, [ch.port2]);
    }
    this.ready.set(location, worker);
  }

  private gone(location: string, worker: Worker): void {
    if (this.ready.get(location) !== worker) return;
    this.ready.delete(location);
    for (const other of this.ready.values()) other.postMessage({ peerDown: location } satisfies PeerNote);
  }
}
