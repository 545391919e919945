#!/usr/bin/env bun
// Chaos run: the server under bounded, loopback-only mixed load (greedy streams compared with a
// clean run, disconnects, bad inputs, huge prompts) while faults hit it one at a time: hosts the
// system started are killed (and restarted by their supervisor), `moe worker` nodes are SIGKILLed
// and started again, nats-server restarts, and quiet spells let idle actors passivate (the
// scaling config is copied with a short idle_timeout_ms for every kind).
//
//   npx bun scripts/chaos.ts [--model DIR] [--scaling FILE] [--seconds N] [--clients N] [--seed S]
//     [--idle-ms MS] [--verbose]
// Prints JSON: requests, failed (and failed_in_fault_window: those a fault overlapped), wrong_outputs,
// max_health_ms, rss_mb {start, end}, faults (counts), failures (the first few).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { parse as parseYaml, stringify } from "yaml";
import { createBackend, DEFAULT_SCALING } from "../src/commands/backend.ts";
import { natsTransportsFor } from "../src/commands/worker.ts";
import { ActorBackend } from "../src/engine/actor-backend.ts";
import { ModelEngine } from "../src/engine/engine.ts";
import { createApp, serveApp } from "../src/gateway/index.ts";
import { loadTokenizer } from "../src/tokenizer/index.ts";
import { parseOrExit, UsageError } from "../src/commands/spec.ts";
import { CHAOS } from "./chaos/flags.ts";
import { FaultLog, NodeProcess, faultsFor } from "./chaos/faults.ts";
import { PROMPTS, Traffic, greedy, watchHealth } from "./chaos/traffic.ts";

const root = new URL("..", import.meta.url).pathname;
const a = parseOrExit(process.argv.slice(2), CHAOS, (v) => {
  if (!(Number(v.seconds) > 0 && Number(v.clients) >= 1 && Number(v["idle-ms"]) >= 1)) throw new UsageError("--seconds, --clients and --idle-ms must be positive numbers");
});
const model = resolve(a.model ?? join(root, "models/fortune-dsv3"));
const seconds = Number(a.seconds), clients = Number(a.clients), idleMs = Number(a["idle-ms"]);
const log = (m: string) => console.error(`[chaos] ${m}`);

// A seeded generator (mulberry32): the same seed gives the same mix of requests and faults.
let seed = Number(a.seed) >>> 0;
const rng = () => {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

// The scaling config, copied with every kind idling out after idleMs.
const tmp = mkdtempSync(join(tmpdir(), "moe-chaos-"));
const src = resolve(a.scaling ?? DEFAULT_SCALING);
const cfg = parseYaml(readFileSync(src, "utf8")) as { placement?: string; idle_timeout_ms?: number; actors: Record<string, { placement?: string | string[]; idle_timeout_ms?: number }> };
cfg.idle_timeout_ms = idleMs;
for (const k of Object.values(cfg.actors)) if (k.idle_timeout_ms !== undefined) k.idle_timeout_ms = idleMs;
const scaling = join(tmp, basename(src));
writeFileSync(scaling, stringify(cfg));

// Remote nodes: an authenticated nats-server and one `moe worker` per node:NAME but the gateway's.
const localNode = cfg.placement?.startsWith("node:") ? cfg.placement.slice(5) : "gateway";
const remote = [...new Set(Object.values(cfg.actors).flatMap((k) => [k.placement ?? []].flat()))]
  .filter((l) => l.startsWith("node:") && l.slice(5) !== localNode).map((l) => l.slice(5));
let nats: NodeProcess | null = null;
let natsUrl: string | undefined;
const system = `chaos${process.pid}`;
if (remote.length || cfg.placement?.startsWith("node:")) {
  if (!Bun.which("nats-server")) Bun.spawnSync(["bash", join(root, "scripts/nats-server.sh"), "--install-only"], { stdio: ["ignore", "inherit", "inherit"] });
  const port = freePort(), secret = crypto.randomUUID().replaceAll("-", "");
  natsUrl = `nats://moe:${secret}@127.0.0.1:${port}`;
  nats = new NodeProcess("nats-server", ["nats-server", "-a", "127.0.0.1", "-p", String(port), "--user", "moe", "--pass", secret]);
  nats.start();
  await waitForPort(port);
}
const nodes = remote.map((n) => new NodeProcess(n, [process.execPath, join(root, "src/cli.ts"), "worker", "--model", model, "--scaling", scaling,
  "--node", n, "--nats", natsUrl!, "--system", system], a.verbose));
for (const n of nodes) n.start();

// The server, in this process so that faults can reach the system that supervises the hosts.
const transports = natsUrl ? await natsTransportsFor(scaling, natsUrl, system) : [];
const backend = await createBackend({ model, scaling, transports, kvTokens: 8192 });
const engine = new ModelEngine(backend, { servedModelName: "chaos", log: a.verbose ? (m) => log(`engine: ${m}`) : undefined });
await engine.warmup?.();
const tokenizer = await loadTokenizer(model);
const server = serveApp(createApp({ engine, tokenizer }), { hostname: "127.0.0.1", port: 0 });
const base = `http://127.0.0.1:${server.port}`;

const reference = new Map<string, string>();
for (const p of PROMPTS) {
  const o = await greedy(base, "chaos", p, false);
  if (o.status !== 200) throw new Error(`the clean run failed for "${p}": ${o.status} ${o.error}`);
  reference.set(p, o.text);
}
log(`clean run done; ${seconds} s of load with ${clients} clients on ${basename(src)} (idle_timeout_ms ${idleMs})`);

const rss = () => {
  let kb = process.memoryUsage().rss / 1024;
  for (const n of nodes) kb += rssKbOf(n.pid);
  return Math.round(kb / 1024);
};
const rssStart = rss();
const faults = new FaultLog();
const traffic = new Traffic(base, "chaos", rng, reference, (since) => faults.overlaps(since));
const hostLocations = backend instanceof ActorBackend
  ? backend.system.locations().filter((l) => l.startsWith("worker:") || l.startsWith("process:")) : [];
const list = faultsFor({
  rng, hostLocations, nodes, idleTimeoutMs: idleMs,
  killHost: (loc) => (backend as ActorBackend).system.killHost(loc, "chaos"),
  restartNats: nats ? async () => {
    await nats!.kill();
    await Bun.sleep(500);
    nats!.start();
  } : undefined,
  quiet: async (ms) => {
    traffic.pause();
    await Bun.sleep(ms);
    traffic.resume();
  },
});
const until = performance.now() + seconds * 1000;
const chaos = (async () => {
  while (performance.now() < until - 3000) {
    await Bun.sleep(1500 + rng() * 2500);
    const f = list[Math.floor(rng() * list.length)]!;
    if (a.verbose) log(`fault: ${f.name}`);
    await faults.during(f.name, f.run);
  }
})();
const [, maxHealth] = await Promise.all([traffic.run(until, clients), watchHealth(base, until), chaos]);
const rssEnd = rss();

console.log(JSON.stringify({
  ...traffic.tally, max_health_ms: Math.round(maxHealth), rss_mb: { start: rssStart, end: rssEnd },
  faults: faults.counts, scaling: basename(src), model: basename(model), seconds,
}, null, 2));

server.stop(true);
await engine.close();
await Promise.all(transports.map((t) => t.close()));
await Promise.all(nodes.map((n) => n.kill("SIGTERM")));
await nats?.kill();
rmSync(tmp, { recursive: true, force: true });
process.exit(0);

function freePort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } }).then((c) => (c.end(), true), () => false);
    if (ok) return;
    await Bun.sleep(50);
  }
  throw new Error(`nothing listens on port ${port}`);
}

function rssKbOf(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
  } catch {
    return 0;
  }
}
