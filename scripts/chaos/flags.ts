// The flags of scripts/chaos.ts, apart from the script (which starts its run when imported), so
// that test/help.test.ts can read them.
import type { CommandSpec } from "../../src/commands/spec.ts";

export const CHAOS = {
  name: "npx bun scripts/chaos.ts",
  summary: "Chaos run: bounded loopback mixed load while hosts are killed, worker nodes SIGKILLed, nats-server restarted and actors passivate; prints JSON.",
  flags: {
    model: { type: "string", arg: "DIR", help: "model directory (default models/fortune-dsv3)" },
    scaling: { type: "string", arg: "FILE", help: "scaling config, copied with a short idle_timeout_ms (default the serve default)" },
    seconds: { type: "string", arg: "N", default: "60", help: "length of the run (default 60)" },
    clients: { type: "string", arg: "N", default: "6", help: "concurrent clients (default 6)" },
    seed: { type: "string", arg: "S", default: "1", help: "seed of the request and fault mix (default 1)" },
    "idle-ms": { type: "string", arg: "MS", default: "300", help: "idle_timeout_ms given to every kind (default 300)" },
    verbose: { type: "boolean", default: false, help: "log each fault, the engine's messages and the worker nodes' output" },
  },
} as const satisfies CommandSpec;
