// A transport for hosts that cannot come back: scheme "flaky", hosts in Bun Workers (or child
// processes) until `broken` is set for a location, after which every start of that location dies
// at once, as a machine that is gone would. What a fallback must cover. It also records the asks
// it carries (where, to whom, with how much time left).
import { ProcessTransport } from "../../src/runtime/process-transport.ts";
import type { Frame } from "../../src/runtime/frames.ts";
import type { Link, Transport } from "../../src/runtime/transport.ts";
import { WorkerTransport } from "../../src/runtime/worker-transport.ts";

export class FlakyTransport implements Transport {
  readonly scheme = "flaky";
  readonly broken = new Set<string>();
  readonly asks: { location: string; to: string; timeoutMs?: number }[] = [];
  private readonly inner: Transport;

  constructor(kind: "worker" | "process" = "worker") {
    this.inner = kind === "worker" ? new WorkerTransport() : new ProcessTransport();
  }

  open(location: string, ...rest: unknown[]): Link {
    if (!this.broken.has(location)) {
      const link = (this.inner.open as (l: string, ...r: unknown[]) => Link)(location, ...rest);
      const send = link.send.bind(link);
      link.send = (f: Frame) => {
        if (f.t === "req" && f.id !== 0) this.asks.push({ location, to: f.to, timeoutMs: f.timeoutMs });
        send(f);
      };
      return link;
    }
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
