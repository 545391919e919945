// Transport "process:N": one child Bun process per location, running process-host.ts, on the
// same host. Frames cross Bun's IPC channel as msgpack bytes (one Uint8Array per frame; the
// channel does the framing). Stdout/stderr are inherited so actor logs still show. The registry
// is on the child's command line; what the child sends back is checked (frames.ts) first.
import { copyBytes, encodeOwned } from "./codec.ts";
import { type Frame, decodeFrame, isBad, logDropped } from "./frames.ts";
import type { HostSpec, Link, Transport } from "./transport.ts";

const ENTRY = new URL("./process-host.ts", import.meta.url).pathname;

/**
 * IPC serializes the whole backing ArrayBuffer of a view (the view's offset and length arrive
 * too). A little slack is cheaper to send than a copy; a mostly empty buffer is not.
 */
export function frameBytes(f: Frame): Uint8Array {
  const b = encodeOwned(f);
  const slack = b.buffer.byteLength - b.byteLength;
  return slack <= Math.max(64 * 1024, b.byteLength >> 3) ? b : copyBytes(b);
}

export class ProcessTransport implements Transport {
  readonly scheme = "process";

  open(location: string, host: HostSpec): Link {
    let frameCb: (f: Frame) => void = () => {};
    let exitCb: (reason: string) => void = () => {};
    let state: "open" | "closed" | "dead" = "open";
    // The child says "hello" once its IPC listener is installed; frames sent earlier could be lost.
    let hello = false;
    const early: Frame[] = [];
    const died = (reason: string) => {
      if (state !== "open") return;
      state = "dead";
      exitCb(reason);
    };
    const proc = Bun.spawn([process.execPath, ENTRY, location, host.registry.module, host.registry.export], {
      stdio: ["ignore", "inherit", "inherit"],
      serialization: "advanced",
      ipc(message) {
        if (message === "hello") {
          hello = true;
          for (const f of early.splice(0)) proc.send(frameBytes(f));
          return;
        }
        const f = decodeFrame(message as Uint8Array, "system");
        if (isBad(f)) logDropped(location, f);
        else frameCb(f);
      },
      onExit(_p, code, signal) {
        died(signal ? `killed by ${signal}` : `exited with code ${code}`);
      },
    });
    return {
      send: (f) => {
        if (state !== "open") return;
        if (hello) proc.send(frameBytes(f));
        else early.push(f);
      },
      onFrame: (cb) => (frameCb = cb),
      onExit: (cb) => (exitCb = cb),
      kill: (reason = "killed") => {
        died(reason);
        proc.kill("SIGKILL");
      },
      close: () => {
        if (state === "open") state = "closed";
        proc.kill();
      },
    };
  }
}
