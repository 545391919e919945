// Transport "worker:N": one Bun Worker per location, running worker-host.ts. Frames cross as
// msgpack bytes whose ArrayBuffer is transferred, not copied (encodeOwned), and are decoded on
// arrival as views on that buffer. The registry goes to the Worker as workerData when it is
// created; what the Worker sends back is checked (frames.ts) before the system sees it.
import { encodeOwned } from "./codec.ts";
import { type Frame, decodeFrame, isBad, logDropped } from "./frames.ts";
import type { HostSpec, Link, Transport } from "./transport.ts";

const ENTRY = new URL("./worker-host.ts", import.meta.url).href;

export function postFrame(target: { postMessage(m: unknown, transfer: ArrayBuffer[]): void }, f: Frame): void {
  const bytes = encodeOwned(f);
  target.postMessage(bytes, [bytes.buffer as ArrayBuffer]);
}

export class WorkerTransport implements Transport {
  readonly scheme = "worker";

  open(location: string, host: HostSpec): Link {
    const worker = new Worker(ENTRY, { name: location, workerData: { registry: host.registry } } as WorkerOptions);
    let exitCb: (reason: string) => void = () => {};
    let state: "open" | "closed" | "dead" = "open";
    const died = (reason: string) => {
      if (state !== "open") return;
      state = "dead";
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
          if (isBad(f)) logDropped(location, f);
          else cb(f);
        };
      },
      onExit: (cb) => (exitCb = cb),
      kill: (reason = "terminated") => {
        died(reason);
        worker.terminate();
      },
      close: () => {
        if (state === "open") state = "closed";
        worker.terminate();
      },
    };
  }
}
