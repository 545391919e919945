// Transport "node:NAME": hosts in other processes or on other hosts, reached over NATS. Each
// node is a `moe worker` process (nats-node.ts) that serves the actors placed on it. The system
// side keeps the runtime's hub shape (HostProxy per location); on the wire:
//   - an ask to an actor is a NATS request on the actor's subject (moe.SYS.a.KIND.KEY), answered
//     by one member of the queue group of every process hosting that kind+key; a tell is a publish;
//   - the first frame ("init") is a request to moe.SYS.node.NAME.init, repeated until a node
//     answers, so a node may start before or after the gateway;
//   - the node's own asks, tells and events come up on moe.SYS.up.NAME;
//   - nodes publish heartbeats (with their incarnation and the actors they host) on moe.SYS.hb.NAME:
//     that is the membership table (directory()), and a node whose heartbeats stop or whose
//     incarnation changes is treated as a dead host, so HostProxy fails or retries its asks and
//     waits for it to come back. A lost NATS connection is treated the same way for every node;
//     the client reconnects forever (maxReconnectAttempts -1) and the nodes are re-initialized.
// The node named `localNode` (the gateway's own) is hosted in a Bun Worker of this process; the
// link to each other node is a NodeLink (nats-link.ts).
//
//   NatsTransport.connect({url, system?, localNode?, ...}) -> NatsTransport { scheme "node",
//     open(location), directory(), close() }
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { natsConnect } from "./nats-connect.ts";
import { HEARTBEAT_MS, NodeLink, type NodeInfo, directSubject } from "./nats-link.ts";
import { Wire, parseHeartbeat, subjects } from "./nats-wire.ts";
import type { HostSpec, Link, Transport } from "./transport.ts";
import { WorkerTransport } from "./worker-transport.ts";

export interface NatsTransportOptions {
  url?: string;
  /** Separates systems sharing one NATS server. Default "default". */
  system?: string;
  /** The node this process hosts itself (in a Bun Worker). Default "gateway". */
  localNode?: string;
  /** A node is dead after this long without a heartbeat. Default 2000. */
  deadAfterMs?: number;
  name?: string;
  /** A .creds or NKey seed file (--nats-creds); user/password or a token go in the URL. */
  creds?: string;
  /** How long to wait for a server that is not up yet (natsConnect's firstConnectMs). */
  firstConnectMs?: number;
}

export interface Heartbeat {
  node: string;
  inc: string;
  actors: string[];
  bye?: boolean;
}

export { HEARTBEAT_MS, directSubject };

export const DEFAULT_NATS_URL = "nats://127.0.0.1:4222";

export type { NodeInfo };

export class NatsTransport implements Transport {
  readonly scheme = "node";
  readonly subj: ReturnType<typeof subjects>;
  readonly wire: Wire;
  private readonly nodes = new Map<string, NodeInfo>();
  private readonly links = new Set<NodeLink>();
  private readonly local = new WorkerTransport();
  private readonly hbSub: Subscription;
  readonly deadAfterMs: number;

  private constructor(readonly nc: NatsConnection, private readonly o: NatsTransportOptions) {
    this.subj = subjects(o.system ?? "default");
    this.wire = new Wire(nc, this.subj.prefix);
    this.deadAfterMs = o.deadAfterMs ?? 2000;
    this.hbSub = nc.subscribe(this.subj.hbAll, {
      callback: (err, msg) => {
        if (err) return;
        const hb = parseHeartbeat(msg.data);
        if (!hb) return;
        if (hb.bye) this.nodes.delete(hb.node);
        else this.nodes.set(hb.node, { node: hb.node, inc: hb.inc, actors: hb.actors, lastSeen: performance.now() });
      },
    });
    void this.watchStatus();
  }

  static async connect(o: NatsTransportOptions = {}): Promise<NatsTransport> {
    const nc = await natsConnect(o.url ?? DEFAULT_NATS_URL, o.name ?? "moe-gateway", { creds: o.creds, firstConnectMs: o.firstConnectMs });
    return new NatsTransport(nc, o);
  }

  open(location: string, host: HostSpec): Link {
    const node = location.slice(location.indexOf(":") + 1);
    if (node === (this.o.localNode ?? "gateway")) return this.local.open(location, host);
    const link = new NodeLink(this, node);
    this.links.add(link);
    link.forget = () => this.links.delete(link);
    return link;
  }

  /** The live nodes, as their heartbeats describe them: who hosts which actors. */
  directory(): NodeInfo[] {
    const now = performance.now();
    return [...this.nodes.values()].filter((n) => now - n.lastSeen <= this.deadAfterMs);
  }

  node(name: string): NodeInfo | undefined {
    return this.nodes.get(name);
  }

  async close(): Promise<void> {
    for (const l of [...this.links]) l.close();
    this.hbSub.unsubscribe();
    this.wire.close();
    await this.nc.close();
  }

  private async watchStatus(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type !== "disconnect") continue;
      for (const l of [...this.links]) l.die("the NATS connection was lost");
    }
  }
}

/** Authenticated, bounded first connect: see nats-connect.ts. */
export { natsConnect, maskUrl } from "./nats-connect.ts";
