// Entry script of a child-process host (ProcessTransport): `bun process-host.ts LOCATION`, with a
// Bun IPC channel to the parent. The child imports the registry module named in the init frame.
import { decode } from "./codec.ts";
import type { Frame } from "./frames.ts";
import { frameBytes } from "./process-transport.ts";
import { serveHost } from "./serve-host.ts";

if (!process.send) {
  console.error("process-host.ts is started by ProcessTransport (it needs an IPC channel)");
  process.exit(2);
}
const send = process.send.bind(process);

// After "stopped" the parent ends the process; exiting here could drop that last frame.
serveHost({
  send: (f) => send(frameBytes(f)),
  onFrame: (cb) => process.on("message", (m) => cb(decode(m as Uint8Array) as Frame)),
});
// An orphan must not linger when the parent dies.
process.on("disconnect", () => process.exit(0));
send("hello");
