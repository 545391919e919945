// How the system reaches a location. A Transport starts hosts for the locations of its scheme
// ("worker:0" -> scheme "worker") and returns a Link that carries link-protocol Frames
// (frames.ts) both ways. Transports know nothing of actors, placement or supervision: HostProxy
// does that the same way for all of them. Adding one (NATS, for "node:NAME") means implementing
// Transport and passing it to ActorSystem.start({transports: [...]}); on the far side, feed
// serveHost() an Endpoint over the same wire.
//
//   Link { send(frame), onFrame(cb), onExit(cb), kill() }
//   Transport { scheme, open(location) }
//   InProcessTransport (scheme "inprocess"): frames by reference, host on the calling thread
//   defaultTransports(): inprocess, worker, process
import type { Frame } from "./frames.ts";
import { serveHost } from "./serve-host.ts";
import { WorkerTransport } from "./worker-transport.ts";
import { ProcessTransport } from "./process-transport.ts";

export interface Link {
  /** Frames are delivered in order. May throw if a frame cannot be encoded. */
  send(frame: Frame): void;
  /** Set once, before the first frame can arrive. */
  onFrame(cb: (frame: Frame) => void): void;
  /** Called once if the host dies on its own or is killed; never after a clean close(). */
  onExit(cb: (reason: string) => void): void;
  /** Abrupt end (worker.terminate, SIGKILL): the crash path. onExit fires. */
  kill(reason?: string): void;
  /** Quiet end after a stop handshake: onExit does not fire. */
  close(): void;
}

export interface Transport {
  readonly scheme: string;
  /** Start a host for `location`; the system's first frame on the link is "init". */
  open(location: string): Link;
}

/** A host on the calling thread. Frames (and the messages in them) go by reference, never encoded. */
export class InProcessTransport implements Transport {
  readonly scheme = "inprocess";

  open(_location: string): Link {
    let toSystem: (f: Frame) => void = () => {};
    let toHost: (f: Frame) => void = () => {};
    let exitCb: (reason: string) => void = () => {};
    let open = true;
    // A microtask per frame keeps delivery asynchronous as on every other transport, so handlers
    // never run inside the sender's call stack (no reentrancy, no deep recursion on chains).
    serveHost({
      send: (f) => queueMicrotask(() => open && toSystem(f)),
      onFrame: (cb) => (toHost = cb),
    });
    return {
      send: (f) => queueMicrotask(() => open && toHost(f)),
      onFrame: (cb) => (toSystem = cb),
      onExit: (cb) => (exitCb = cb),
      kill: (reason = "killed") => {
        if (!open) return;
        open = false;
        exitCb(reason);
      },
      close: () => void (open = false),
    };
  }
}

export function defaultTransports(): Transport[] {
  return [new InProcessTransport(), new WorkerTransport(), new ProcessTransport()];
}
