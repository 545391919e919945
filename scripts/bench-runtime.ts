// The cost of one actor hop: an ask round trip to an echo actor, in-process, to a Bun Worker,
// worker to worker, and to a child process, for a small message and for 1 MB and 8 MB Float32Array
// payloads (which travel both ways). Prints a table, or JSON with --json.
//
//   npx bun scripts/bench-runtime.ts [--json] [--quick]
//
// This module is also the registry the hosts load (they import it; only the main module runs the
// benchmark), so it needs nothing outside src/runtime.
import { ActorSystem, defineActor, defineRegistry } from "../src/runtime/index.ts";
import { type CommandSpec, parseOrExit } from "../src/commands/spec.ts";
export const BENCH_RUNTIME = {
  name: "npx bun scripts/bench-runtime.ts",
  summary: "The cost of one actor hop: ask round trips to an echo actor in-process, to a Bun Worker, worker to worker and to a child process (small, 1 MB and 8 MB payloads).",
  flags: {
    json: { type: "boolean", help: "print the rows as JSON" },
    quick: { type: "boolean", help: "fewer iterations (a smoke run)" },
  },
} as const satisfies CommandSpec;


const echo = defineActor({
  kind: "echo",
  activate: () => ({}),
  handle: (_s, msg: unknown) => msg,
});

/** Asks another actor from inside a host: the hop an actor (router -> expert) pays. */
const relay = defineActor({
  kind: "relay",
  activate: () => ({}),
  async handle(_s, msg: { type: "relay"; to: string; n: number; payload: unknown }, ctx) {
    const t0 = performance.now();
    for (let i = 0; i < msg.n; i++) await ctx.ask(msg.to, { type: "echo", payload: msg.payload });
    return (performance.now() - t0) / msg.n;
  },
});

export const registry = defineRegistry(echo, relay);

interface Row {
  path: string;
  payload: string;
  bytes: number;
  iters: number;
  mean_us: number;
  p50_us: number;
}

const PAYLOADS = [
  { name: "small", bytes: 0, make: () => ({ type: "echo", seq: 1, ids: [1, 2, 3] }) },
  { name: "1 MB", bytes: 1 << 20, make: () => ({ type: "echo", x: new Float32Array((1 << 20) / 4).fill(1) }) },
  { name: "8 MB", bytes: 8 << 20, make: () => ({ type: "echo", x: new Float32Array((8 << 20) / 4).fill(1) }) },
];

export async function timeAsks(sys: ActorSystem, to: string, msg: unknown, iters: number): Promise<number[]> {
  for (let i = 0; i < Math.min(20, iters); i++) await sys.ask(to, msg); // warm-up (activation, JIT)
  const out: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    await sys.ask(to, msg);
    out.push((performance.now() - t0) * 1000);
  }
  return out;
}

function row(path: string, p: (typeof PAYLOADS)[number], samples: number[]): Row {
  const sorted = [...samples].sort((a, b) => a - b);
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
  return { path, payload: p.name, bytes: p.bytes, iters: samples.length, mean_us: mean, p50_us: sorted[sorted.length >> 1]! };
}

async function main(): Promise<void> {
  const { json, quick } = parseOrExit(process.argv.slice(2), BENCH_RUNTIME);
  const sys = await ActorSystem.start({
    registry: { module: import.meta.path },
    placement: [
      { kind: "echo", key: "main", location: "inprocess" },
      { kind: "echo", key: "w0", location: "worker:0" },
      { kind: "echo", key: "w1", location: "worker:1" },
      { kind: "echo", key: "p", location: "process:0" },
      { kind: "relay", key: "w0", location: "worker:0" },
    ],
    askTimeoutMs: 60_000,
  });
  const rows: Row[] = [];
  const direct: [string, string][] = [
    ["main -> inprocess", "echo/main"],
    ["main -> worker", "echo/w0"],
    ["main -> process", "echo/p"],
  ];
  for (const p of PAYLOADS) {
    const iters = p.bytes === 0 ? (quick ? 500 : 5000) : p.bytes > 1 << 20 ? (quick ? 5 : 30) : quick ? 20 : 100;
    const msg = p.make();
    for (const [path, to] of direct) rows.push(row(path, p, await timeAsks(sys, to, msg, iters)));
    // Actor-to-actor from inside worker 0: to a neighbour in the same worker, and to worker 1.
    for (const [path, to] of [["worker actor -> same worker", "echo/w0"], ["worker actor -> other worker", "echo/w1"]] as const) {
      const payload = "x" in msg ? msg.x : null;
      await sys.ask("relay/w0", { type: "relay", to, n: 5, payload });
      const per = await sys.ask<number>("relay/w0", { type: "relay", to, n: iters, payload });
      rows.push({ path, payload: p.name, bytes: p.bytes, iters, mean_us: per * 1000, p50_us: NaN });
    }
  }
  await sys.stop();

  // Per MB: the extra round-trip time of the payload over the small message, per MB each way.
  const perMB: Record<string, number> = {};
  for (const path of new Set(rows.map((r) => r.path))) {
    const small = rows.find((r) => r.path === path && r.bytes === 0)!;
    const big = rows.find((r) => r.path === path && r.bytes === 8 << 20)!;
    perMB[path] = (big.mean_us - small.mean_us) / (2 * 8);
  }
  if (json) {
    console.log(JSON.stringify({ bun: Bun.version, cpus: navigator.hardwareConcurrency, rows, per_mb_one_way_us: perMB }, null, 2));
    return;
  }
  console.log(`actor hop = ask round trip to an echo actor (payload goes both ways); bun ${Bun.version}\n`);
  console.log(`${"path".padEnd(30)} ${"payload".padEnd(8)} ${"iters".padStart(6)} ${"mean".padStart(11)} ${"p50".padStart(11)}`);
  const us = (x: number) => (Number.isNaN(x) ? "-" : x >= 1000 ? `${(x / 1000).toFixed(2)} ms` : `${x.toFixed(1)} us`);
  for (const r of rows) {
    console.log(`${r.path.padEnd(30)} ${r.payload.padEnd(8)} ${String(r.iters).padStart(6)} ${us(r.mean_us).padStart(11)} ${us(r.p50_us).padStart(11)}`);
  }
  console.log("\nper MB, one way (from the 8 MB and small round trips):");
  for (const [path, x] of Object.entries(perMB)) console.log(`  ${path.padEnd(30)} ${us(x)}/MB`);
}

// Not awaited: the in-process host imports this module, which must finish evaluating first.
if (import.meta.main) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
