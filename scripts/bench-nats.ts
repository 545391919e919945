// What going multi-host costs: an ask round trip to an echo actor over NATS (a `node:` host in
// another process, through a local nats-server) against the in-process, Bun Worker and child
// process transports, for a small message and for 1 MB and 8 MB Float32Array payloads (both ways;
// above the server's 1 MB max_payload they travel as pulled chunks). Prints a table, or --json.
//
//   npx bun scripts/bench-nats.ts [--json] [--quick]
//
// It starts its own nats-server on a free loopback port (installing it with scripts/nats-server.sh
// if needed) and runs itself again as the node (`--serve-node URL SYSTEM`). This module is also the
// registry the hosts load.
import { natsConnect } from "../src/runtime/nats-connect.ts";
import { ActorSystem, defineActor, defineRegistry } from "../src/runtime/index.ts";
import { serveNode } from "../src/runtime/nats-node.ts";
import { NatsTransport } from "../src/runtime/nats-transport.ts";
import { NatsServer, natsUnavailable } from "../test/nats/cluster.ts";
import { timeAsks } from "./bench-runtime.ts";
import { type CommandSpec, parseOrExit } from "../src/commands/spec.ts";
export const BENCH_NATS = {
  name: "npx bun scripts/bench-nats.ts",
  summary: "What going multi-host costs: ask round trips over NATS (a node in another process, through its own local nats-server) against the in-process, Bun Worker and child process transports.",
  flags: {
    json: { type: "boolean", help: "print the rows as JSON" },
    quick: { type: "boolean", help: "fewer iterations (a smoke run)" },
  },
} as const satisfies CommandSpec;


export const registry = defineRegistry(defineActor({ kind: "echo", activate: () => ({}), handle: (_s, msg: unknown) => msg }));

const PAYLOADS = [
  { name: "small", bytes: 0, make: () => ({ type: "echo", seq: 1, ids: [1, 2, 3] }) },
  { name: "1 MB", bytes: 1 << 20, make: () => ({ type: "echo", x: new Float32Array((1 << 20) / 4).fill(1) }) },
  { name: "8 MB", bytes: 8 << 20, make: () => ({ type: "echo", x: new Float32Array((8 << 20) / 4).fill(1) }) },
];

const PATHS: [string, string][] = [
  ["inprocess", "echo/main"],
  ["worker", "echo/w"],
  ["process", "echo/p"],
  ["nats (node process)", "echo/n"],
];

interface Row { path: string; payload: string; bytes: number; iters: number; mean_us: number; p50_us: number; p99_us: number; mb_per_s: number | null }

async function serveNodeMain(url: string, system: string): Promise<void> {
  const nc = await natsConnect(url, "bench-node");
  const node = await serveNode({ nc, system, node: "bench", log: () => {}, registry: { module: import.meta.path } });
  process.on("SIGTERM", async () => {
    await node.stop(0);
    await nc.close();
    process.exit(0);
  });
}

async function main(): Promise<void> {
  const { json, quick } = parseOrExit(process.argv.slice(2), BENCH_NATS);
  const why = natsUnavailable();
  if (why) throw new Error(why);
  const server = new NatsServer();
  await server.start();
  const system = `bench${process.pid}`;
  const nodeProc = Bun.spawn([process.execPath, import.meta.path, "--serve-node", server.url, system], { stdio: ["ignore", "inherit", "inherit"] });
  const transport = await NatsTransport.connect({ url: server.url, system });
  const sys = await ActorSystem.start({
    registry: { module: import.meta.path },
    placement: [
      { kind: "echo", key: "main", location: "inprocess" },
      { kind: "echo", key: "w", location: "worker:0" },
      { kind: "echo", key: "p", location: "process:0" },
      { kind: "echo", key: "n", location: "node:bench" },
    ],
    askTimeoutMs: 60_000,
    transports: [transport],
  });
  const rows: Row[] = [];
  try {
    for (const p of PAYLOADS) {
      const iters = p.bytes === 0 ? (quick ? 300 : 3000) : p.bytes > 1 << 20 ? (quick ? 5 : 30) : quick ? 20 : 100;
      const msg = p.make();
      for (const [path, to] of PATHS) {
        const s = (await timeAsks(sys, to, msg, iters)).sort((a, b) => a - b);
        const mean = s.reduce((a, b) => a + b, 0) / s.length;
        const q = (f: number) => s[Math.min(s.length - 1, Math.floor(f * s.length))]!;
        // Throughput counts the payload both ways, as the round trip carries it.
        const mbps = p.bytes ? (2 * p.bytes) / (1 << 20) / (mean / 1e6) : null;
        rows.push({ path, payload: p.name, bytes: p.bytes, iters, mean_us: mean, p50_us: q(0.5), p99_us: q(0.99), mb_per_s: mbps });
      }
    }
  } finally {
    await sys.stop();
    await transport.close();
    nodeProc.kill("SIGTERM");
    await nodeProc.exited;
    await server.stop();
  }
  if (json) return console.log(JSON.stringify({ bun: Bun.version, cpus: navigator.hardwareConcurrency, rows }, null, 2));
  console.log(`ask round trip to an echo actor (payload both ways); bun ${Bun.version}, ${navigator.hardwareConcurrency} cpus\n`);
  console.log(`${"path".padEnd(22)} ${"payload".padEnd(8)} ${"iters".padStart(6)} ${"mean".padStart(10)} ${"p50".padStart(10)} ${"p99".padStart(10)} ${"MB/s".padStart(8)}`);
  const us = (x: number) => (x >= 1000 ? `${(x / 1000).toFixed(2)} ms` : `${x.toFixed(1)} us`);
  for (const r of rows) {
    const cols = [r.path.padEnd(22), r.payload.padEnd(8), String(r.iters).padStart(6), us(r.mean_us).padStart(10), us(r.p50_us).padStart(10), us(r.p99_us).padStart(10), (r.mb_per_s === null ? "-" : r.mb_per_s.toFixed(0)).padStart(8)];
    console.log(cols.join(" "));
  }
}

if (import.meta.main) {
  const i = process.argv.indexOf("--serve-node");
  const run = i > 0 ? serveNodeMain(process.argv[i + 1]!, process.argv[i + 2]!) : main();
  run.catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
