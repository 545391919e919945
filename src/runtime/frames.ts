// The link protocol between the system (main thread) and a host (in-process, Worker, child
// process, or a remote node later). Transports carry Frames and nothing else; what a frame means is
// decided here and in host-proxy.ts / serve-host.ts, so a new transport never touches it.
import type { ErrorInfo } from "./actor.ts";
import type { RuntimeEvent } from "./events.ts";
import type { PlacementSpec } from "./placement.ts";
import type { RegistryRef } from "./registry.ts";

export interface HostInit {
  readonly location: string;
  readonly registry: Required<RegistryRef>;
  readonly placement: PlacementSpec;
  readonly config: unknown;
  /** Per kind; "*" is the default for kinds not named. Missing: the kind's own, else never. */
  readonly idleTimeoutMs: Readonly<Record<string, number>>;
  readonly askTimeoutMs: number;
}

export type Frame =
  | { t: "init"; init: HostInit } // system -> host, first frame
  | { t: "ready"; ms: number } // host -> system: registry loaded
  | { t: "fatal"; error: string } // host -> system: cannot serve (e.g. the registry failed to load)
  // either way; id 0 is a tell. A host sends one for a target placed elsewhere.
  | { t: "req"; id: number; to: string; msg: unknown; timeoutMs?: number; retry?: boolean }
  | { t: "rep"; id: number; value?: unknown; error?: ErrorInfo }
  | { t: "ctl"; op: "activate"; to: string; restarted: boolean } // system -> host (supervisor)
  | { t: "ev"; event: RuntimeEvent } // host -> system
  | { t: "stop" } // system -> host: passivate everything, then answer stopped
  | { t: "stopped" };
