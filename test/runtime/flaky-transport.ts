// A transport for hosts that cannot come back: scheme "flaky", hosts in Bun Workers (or child
// processes) until `broken` is set for a location, after which every start of that location dies
// at once, as a machine that is gone would. What a fallback must cover.
import { ProcessTransport } from "../../src/runtime/process-transport.ts";
import type { Link, Transport } from "../../src/runtime/transport.ts";
import { WorkerTransport } from "../../src/runtime/worker-transport.ts";

export class FlakyTransport implements Transport {
  readonly scheme = "flaky";
  readonly broken = new Set<string>();
  private readonly inner: Transport;

  constructor(kind: "worker" | "process" = "worker") {
    this.inner = kind === "worker" ? new WorkerTransport() : new ProcessTransport();
  }

  open(location: string, ...rest: unknown[]): Link {
    if (!this.broken.has(location)) return (this.inner.open as (l: string, ...r: unknown[]) => Link)(location, ...rest);
    let exitCb: (reason: string) => void = () => {};
    let open = true;
    const die = (reason: string) => {
      if (!open) return;
      open = false;
      exitCb(reason);
    };
    setTimeout(() => die("cannot start: the machine is gone"), 5);
    return {
      send: () => {},
      onFrame: () => {},
      onExit: (cb) => (exitCb = cb),
      kill: (reason = "killed") => die(reason),
      close: () => void (open = false),
    };
  }
}
