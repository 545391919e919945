// Entry script of a child-process host (ProcessTransport): `bun process-host.ts LOCATION MODULE
// EXPORT`, with a Bun IPC channel to the parent. The registry is the one on its command line,
// chosen by the parent when it spawned the child; frames only bring data, checked by serveHost.
import { decode } from "./codec.ts";
import { hostSpecOf } from "./host-spec.ts";
import { frameBytes } from "./process-transport.ts";
import { serveHost } from "./serve-host.ts";

if (!process.send) {
  console.error("process-host.ts is started by ProcessTransport (it needs an IPC channel)");
  process.exit(2);
}
const send = process.send.bind(process);

try {
  const [module, name] = process.argv.slice(3);
  const spec = hostSpecOf({ registry: { module, export: name } }, "argv");
  // After "stopped" the parent ends the process; exiting here could drop that last frame.
  serveHost({
    send: (f) => send(frameBytes(f)),
    onFrame: (cb) =>
      process.on("message", (m) => {
        let value: unknown;
        try {
          value = decode(m as Uint8Array);
        } catch (err) {
          return console.error(`[frames] dropped an undecodable frame from the system: ${(err as Error).message}`);
        }
        cb(value);
      }),
  }, spec);
} catch (err) {
  // Not a crash to restart from: the same argv would fail again. Sent once the parent listens.
  const error = (err as Error).message;
  process.on("message", () => {});
  queueMicrotask(() => send(frameBytes({ t: "fatal", error })));
}
// An orphan must not linger when the parent dies.
process.on("disconnect", () => process.exit(0));
send("hello");
