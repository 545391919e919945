// A throwaway multi-node deployment for the NATS tests and the bench: a nats-server on a free
// loopback port (installed by scripts/nats-server.sh when missing), `moe worker` processes, and a
// gateway-side ActorBackend + ModelEngine reaching them over NATS.
import { spawnSync } from "node:child_process";
import { startActorBackend } from "../../src/commands/backend.ts";
import type { ActorBackend } from "../../src/engine/actor-backend.ts";
import { ModelEngine } from "../../src/engine/engine.ts";
import { NatsTransport } from "../../src/runtime/nats-transport.ts";

export const root = new URL("../..", import.meta.url).pathname;
export const MODEL = `${root}test/fixtures/tiny-dsv3`;

/** Why NATS tests cannot run here, or null when nats-server is (or could be made) available. */
export function natsUnavailable(): string | null {
  if (Bun.which("nats-server")) return null;
  const r = spawnSync("bash", [`${root}scripts/nats-server.sh`, "--install-only"], { encoding: "utf8", timeout: 120_000 });
  if (r.status === 0 && Bun.which("nats-server")) return null;
  return `nats-server is not installed and scripts/nats-server.sh could not install it: ${(r.stderr || r.error?.message || "").trim().split("\n").pop()}`;
}

export function freePort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

/** An authenticated nats-server (user "moe", a random secret kept across restarts), as scripts/nats-server.sh starts. */
export class NatsServer {
  proc: ReturnType<typeof Bun.spawn> | null = null;
  readonly secret = crypto.randomUUID().replaceAll("-", "");
  constructor(readonly port = freePort()) {}
  /** With the credentials: what workers and the gateway are given. */
  get url() {
    return `nats://moe:${this.secret}@127.0.0.1:${this.port}`;
  }
  /** Without credentials: what an outsider on the network has. */
  get anonUrl() {
    return `nats://127.0.0.1:${this.port}`;
  }
  async start(): Promise<void> {
    const args = ["-a", "127.0.0.1", "-p", String(this.port), "--user", "moe", "--pass", this.secret];
    this.proc = Bun.spawn(["nats-server", ...args], { stdio: ["ignore", "ignore", "ignore"] });
    for (let i = 0; i < 100; i++) {
      try {
        const c = await Bun.connect({ hostname: "127.0.0.1", port: this.port, socket: { data() {} } });
        c.end();
        return;
      } catch {
        await Bun.sleep(50);
      }
    }
    throw new Error(`nats-server did not start on port ${this.port}`);
  }
  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    p?.kill("SIGKILL");
    await p?.exited;
  }
}

export class Worker {
  proc: ReturnType<typeof Bun.spawn> | null = null;
  constructor(readonly node: string, readonly scaling: string, readonly url: string, readonly system: string) {}
  start(): void {
    this.proc = Bun.spawn(
      [process.execPath, `${root}src/cli.ts`, "worker", "--model", MODEL, "--scaling", this.scaling, "--node", this.node, "--nats", this.url, "--system", this.system],
      { cwd: root, stdio: ["ignore", "ignore", process.env.MOE_TEST_VERBOSE ? "inherit" : "ignore"] },
    );
  }
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const p = this.proc;
    this.proc = null;
    p?.kill(signal);
    await p?.exited;
  }
}

export interface Cluster {
  server: NatsServer;
  workers: Worker[];
  transport: NatsTransport;
  backend: ActorBackend;
  engine: ModelEngine;
  close(): Promise<void>;
}

/** nats-server, one worker per remote node of the config, and the gateway side. */
export async function startCluster(scaling: string, nodes: string[], askTimeoutMs = 20_000): Promise<Cluster> {
  const server = new NatsServer();
  await server.start();
  const system = `t${process.pid}${server.port}`;
  const workers = nodes.map((n) => new Worker(n, scaling, server.url, system));
  for (const w of workers) w.start();
  const transport = await NatsTransport.connect({ url: server.url, system, localNode: "gateway" });
  const backend = await startActorBackend({ model: MODEL, scaling, pages: 512, pageSize: 16, transports: [transport], askTimeoutMs });
  const engine = new ModelEngine(backend, { servedModelName: "tiny" });
  return {
    server, workers, transport, backend, engine,
    async close() {
      await engine.close();
      await transport.close();
      await Promise.all(workers.map((w) => w.kill("SIGTERM")));
      await server.stop();
    },
  };
}
