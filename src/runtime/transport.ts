// How the system reaches a location. A Transport starts hosts for the locations of its scheme
// ("worker:0" -> scheme "worker") and returns a Link that carries link-protocol Frames
// (frames.ts) both ways. Transports know nothing of actors, placement or supervision: HostProxy
// does that the same way for all of them. Adding one (NATS, for "node:NAME") means implementing
// Transport and passing it to ActorSystem.start({transports: [...]}); on the far side, feed
// serveHost() an Endpoint over the same wire.
//
// A host's code is fixed when it starts: open() gets a HostSpec (the registry module) that the
// starting process chose, and passes it to the new host out of band (Worker data, argv); the
// frames that follow carry data only.
//
//   Link { send(frame), onFrame(cb), onExit(cb), kill() }
//   HostSpec { registry }; Transport { scheme, open(location, host) }
//   bindHost(transport, host) -> HostOpener { scheme, open(location) }: what a HostProxy opens with
//   InProcessTransport (scheme "inprocess"): frames by reference, host on the calling thread
//   defaultTransports(): inprocess, worker, process
import type { Frame } from "./frames.ts";
import type { RegistryRef } from "./registry.ts";
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

/** What a host is started with, by the process that starts it. */
export interface HostSpec {
  /** Resolved (resolveRegistryRef): an absolute file URL and an export name. */
  readonly registry: Required<RegistryRef>;
}

export interface Transport {
  readonly scheme: string;
  /**
   * Start a host for `location` running `host.registry` (a remote node runs its own, fixed when
   * that node started); the system's first frame on the link is "init".
   */
  open(location: string, host: HostSpec): Link;
}

/** A transport with the system's HostSpec bound: HostProxy opens (and re-opens) links with it. */
export interface HostOpener {
  readonly scheme: string;
  open(location: string): Link;
}

export function bindHost(t: Transport, host: HostSpec): HostOpener {
  return { scheme: t.scheme, open: (location) => t.open(location, host) };
}

/** A host on the calling thread. Frames (and the messages in them) go by reference, never encoded. */
export class InProcessTransport implements Transport {
  readonly scheme = "inprocess";

  open(_location: string, host: HostSpec): Link {
    let toSystem: (f: Frame) => void = () => {};
    let toHost: (f: Frame) => void = () => {};
    let exitCb: (reason: string) => void = () => {};
    let open = true;
    // A microtask per frame keeps delivery asynchronous as on every other transport, so handlers
    // never run inside the sender's call stack (no reentrancy, no deep recursion on chains).
    serveHost({
      send: (f) => queueMicrotask(() => open && toSystem(f)),
      onFrame: (cb) => (toHost = cb),
    }, host);
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
