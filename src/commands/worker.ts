// `moe worker` (flags: WORKER below, or --help):
// one node of a multi-process (multi-host) deployment. It serves the actors the scaling config
// places on "node:NAME", reached over NATS by the gateway (`moe serve` with the same config), until
// SIGINT or SIGTERM. The actor kinds are this project's own (actors/index.ts), fixed here: nothing
// on the bus can change what code runs. The gateway's system sends the actors' config (KV pages,
// tables); this process only swaps in its own path to the checkpoint, which may differ between hosts.
// The connection authenticates (credentials in the URL, or an NKey/creds file); refused
// credentials end the process at once with a non-zero status, a server that does not answer within
// --nats-wait seconds (default 30) as well.
//
//   natsTransportsFor(scalingPath, url?, system?, creds?) -> NatsTransport[] (empty without node:
//     locations), for the gateway side (serve); close() them after the engine
import { resolve } from "node:path";
import { loadModelConfig } from "../config/model.ts";
import { loadScaling, resolveScaling } from "../config/scaling.ts";
import { moeLayers } from "../model/moe.ts";
import type { ModelActorsConfig } from "../protocol.ts";
import type { HostInit } from "../runtime/frames.ts";
import { serveNode } from "../runtime/nats-node.ts";
import { maskUrl, natsConnect } from "../runtime/nats-connect.ts";
import { DEFAULT_NATS_URL, NatsTransport } from "../runtime/nats-transport.ts";
import { type CommandSpec, DEFAULT_MODEL, UsageError, parseSpec } from "./args.ts";
import { ACTOR_REGISTRY } from "./backend.ts";

export function natsUrl(flag?: string): string {
  return flag ?? process.env.NATS_URL ?? DEFAULT_NATS_URL;
}

/** --nats-creds, else NATS_CREDS; an empty value is a mistake, not "no credentials". */
export function natsCreds(flag?: string): string | undefined {
  const v = flag ?? process.env.NATS_CREDS;
  if (v !== undefined && v.trim() === "") throw new UsageError("--nats-creds (or NATS_CREDS) is empty: give a .creds or NKey seed file");
  return v;
}

/** Says what is being waited for when `p` has not settled within a second (a NATS server that
 * is not up yet): silence would look like a hang. */
export async function whileWaiting<T>(p: Promise<T>, message: string, log: (l: string) => void): Promise<T> {
  const t = setTimeout(() => log(message), 1000);
  try {
    return await p;
  } finally {
    clearTimeout(t);
  }
}

/**
 * The transports `serve` needs for a scaling config: the NATS one when the config places anything on
 * "node:NAME", none otherwise. The gateway hosts the node named by the config's top-level
 * `placement` itself (in a Bun worker); every other node is a `moe worker` process.
 */
export async function natsTransportsFor(scalingPath: string, url?: string, system?: string, creds?: string, waitS = 30): Promise<NatsTransport[]> {
  const cfg = loadScaling(scalingPath);
  const locs = [cfg.placement, ...Object.values(cfg.actors).flatMap((k) => (k.placement === undefined ? [] : [k.placement].flat()))];
  if (!locs.some((l) => l.startsWith("node:"))) return [];
  const localNode = cfg.placement.startsWith("node:") ? cfg.placement.slice(5) : "gateway";
  const u = natsUrl(url);
  const connecting = NatsTransport.connect({ url: u, system: system ?? process.env.MOE_NATS_SYSTEM, localNode, creds: natsCreds(creds), firstConnectMs: waitS * 1000 });
  const waiting = `waiting up to ${waitS} s (--nats-wait) for the NATS server at ${maskUrl(u)}: the scaling config places actors on nodes; start one with scripts/nats-server.sh`;
  return [await whileWaiting(connecting, waiting, (l) => console.warn(`moe-actors: ${l}`))]; // serve routes console.warn to its log
}

export const WORKER = {
  name: "moe worker",
  summary: "Serves the actors a scaling config places on node:NAME, reached by the gateway (moe serve, same config) over NATS, until SIGINT/SIGTERM.",
  flags: {
    model: { type: "string", arg: "DIR", help: "model directory on this host (default: the bundled models/fortune-dsv3)" },
    scaling: { type: "string", arg: "FILE", help: "the gateway's scaling config (required)" },
    node: { type: "string", arg: "NAME", help: "which node:NAME of the config this process is (required)" },
    nats: { type: "string", arg: "URL", help: `NATS server, credentials in the URL (default NATS_URL, else ${DEFAULT_NATS_URL})` },
    "nats-creds": { type: "string", arg: "FILE", help: "a .creds file or user NKey seed file (default NATS_CREDS)" },
    "nats-wait": { type: "string", arg: "S", help: "seconds to wait for a NATS server that is not up yet, then fail (default 30)" },
    system: { type: "string", arg: "NAME", help: "system name separating deployments on one NATS server (default MOE_NATS_SYSTEM, else \"default\")" },
  },
  notes: "Refused credentials end the worker at once with a non-zero status; so does losing the bus for good.",
} as const satisfies CommandSpec;

export async function workerCommand(argv: string[]): Promise<void> {
  const a = parseSpec(argv, WORKER);
  if (!a.scaling || !a.node) throw new UsageError("worker needs --scaling FILE --node NAME");
  const model = resolve(a.model ?? DEFAULT_MODEL); // like every model command (the README runs it so)
  const node = a.node;
  // Check the config here, so a typo in --node fails at once rather than waiting for an init.
  const config = loadModelConfig(`${model}/config.json`);
  const scaling = resolveScaling(loadScaling(a.scaling), { n_routed_experts: config.n_routed_experts, moe_layers: moeLayers(config) });
  const mine = scaling.actors.filter((x) => x.location === `node:${node}`).map((x) => `${x.kind}/${x.key}`);
  if (mine.length === 0) {
    const nodes = [...new Set(scaling.locations.filter((l) => l.startsWith("node:")))].join(", ") || "none";
    throw new UsageError(`--node ${node}: the scaling config places no actor on node:${node} (its nodes: ${nodes})`);
  }
  const url = natsUrl(a.nats);
  const log = (l: string) => console.error(`[worker ${node}] ${l}`);
  const wait = Number(a["nats-wait"] ?? 30);
  if (!(wait > 0)) throw new UsageError(`--nats-wait ${a["nats-wait"]}: seconds to wait for the NATS server, > 0`);
  const nc = await whileWaiting(
    natsConnect(url, `moe-worker-${node}`, { creds: natsCreds(a["nats-creds"]), firstConnectMs: wait * 1000 }),
    `waiting up to ${wait} s (--nats-wait) for the NATS server at ${maskUrl(url)}; start one with scripts/nats-server.sh`, log,
  );
  log(`connected to ${maskUrl(url)}; serving ${mine.join(", ")} once the gateway (moe serve, same scaling config) starts them`);
  const rewriteInit = (init: HostInit): HostInit => ({ ...init, config: { ...(init.config as ModelActorsConfig), model } });
  const server = await serveNode({
    nc, node, rewriteInit, log, warm: true, system: a.system ?? process.env.MOE_NATS_SYSTEM, registry: ACTOR_REGISTRY, // the project's own kinds, fixed for this process's life
  });
  void (async () => {
    for await (const s of nc.status()) if (s.type === "disconnect" || s.type === "reconnect") log(`NATS ${s.type}`);
  })();
  // The client gives up only on refused credentials (it reconnects forever otherwise): a worker
  // that can no longer reach the bus must say so and end, not linger as a zombie node.
  void nc.closed().then((err) => {
    if (!err) return;
    log(`NATS connection closed: ${err.message}`);
    process.exit(1);
  });
  await new Promise<void>((done) => {
    const stop = async () => {
      log("stopping");
      await server.stop();
      await nc.drain().catch(() => {});
      done();
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
}
