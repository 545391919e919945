// The chaos run's faults, one at a time on a seeded schedule: kill a host the system started (a Bun
// worker or a child process, restarted by its supervisor), SIGKILL a `moe worker` node and start it
// again later, restart nats-server, or go quiet long enough for idle actors to passivate.
//
//   Fault { name, run(): Promise<void> }; faultsFor(deps) -> Fault[]; FaultLog (windows of faults)
//   NodeProcess(cmd): a restartable child process

export interface Fault {
  readonly name: string;
  run(): Promise<void>;
}

/** When faults happened: a request that overlaps one (or started shortly before) may be its casualty. */
export class FaultLog {
  private readonly windows: { from: number; to: number; name: string }[] = [];
  readonly counts: Record<string, number> = {};

  async during(name: string, fn: () => Promise<void>): Promise<void> {
    const w = { from: performance.now(), to: Infinity, name };
    this.windows.push(w);
    this.counts[name] = (this.counts[name] ?? 0) + 1;
    try {
      await fn();
    } finally {
      w.to = performance.now();
    }
  }

  /** A request that started at `since` and failed now: did a fault overlap it (give recovery 5 s)? */
  overlaps(since: number): boolean {
    return this.windows.some((w) => w.from <= performance.now() && w.to + 5000 >= since);
  }
}

/** A child process we can SIGKILL and start again with the same command. */
export class NodeProcess {
  private proc: ReturnType<typeof Bun.spawn> | null = null;
  constructor(readonly name: string, private readonly cmd: string[], private readonly verbose = false) {}

  start(): void {
    this.proc = Bun.spawn(this.cmd, { stdio: ["ignore", "ignore", this.verbose ? "inherit" : "ignore"] });
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const p = this.proc;
    this.proc = null;
    p?.kill(signal);
    await p?.exited;
  }
}

export interface FaultDeps {
  rng(): number;
  /** Locations the system started itself (worker:N, process:N): killHost restarts them. */
  hostLocations: string[];
  killHost(location: string): void;
  /** `moe worker` processes of node:NAME locations. */
  nodes: NodeProcess[];
  /** Restart nats-server on the same port (none without NATS). */
  restartNats?: () => Promise<void>;
  /** Stop sending for long enough that idle actors passivate, then resume. */
  quiet(ms: number): Promise<void>;
  idleTimeoutMs: number;
}

const pick = <T>(rng: () => number, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;

export function faultsFor(d: FaultDeps): Fault[] {
  const out: Fault[] = [];
  if (d.hostLocations.length) {
    out.push({ name: "kill_host", run: async () => d.killHost(pick(d.rng, d.hostLocations)) });
  }
  if (d.nodes.length) {
    out.push({
      name: "kill_node",
      run: async () => {
        const n = pick(d.rng, d.nodes);
        await n.kill();
        await Bun.sleep(1000 + Math.floor(d.rng() * 3000)); // the survivors serve meanwhile
        n.start();
      },
    });
  }
  if (d.restartNats) out.push({ name: "restart_nats", run: d.restartNats });
  out.push({ name: "passivate", run: () => d.quiet(d.idleTimeoutMs * 4 + 200) });
  return out;
}
