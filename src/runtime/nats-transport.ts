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
// The node named `localNode` (the gateway's own) is hosted in a Bun Worker of this process.
//
//   NatsTransport.connect({url, system?, localNode?, ...}) -> NatsTransport { scheme "node",
//     open(location), directory(), close() }
import { type Msg, type NatsConnection, type Subscription, errors } from "@nats-io/transport-node";
import { ActorError, errorText, parseId } from "./actor.ts";
import { encode } from "./codec.ts";
import { type Frame, decodeFrame, isBad } from "./frames.ts";
import { natsConnect } from "./nats-connect.ts";
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

/** What a node's heartbeats say about it. */
export interface NodeInfo {
  node: string;
  inc: string;
  actors: string[];
  lastSeen: number;
}

export interface Heartbeat {
  node: string;
  inc: string;
  actors: string[];
  bye?: boolean;
}

export const HEARTBEAT_MS = 300;

/**
 * A node's own request subject: asks for actors it does not host by placement, i.e. actors the
 * system re-activated there while their host was lost (a fallback). Nobody else subscribes to it.
 */
export function directSubject(prefix: string, node: string): string {
  return `${prefix}.node.${node.replace(/[^A-Za-z0-9_-]/g, "_")}.req`;
}
const HANDSHAKE_RETRY_MS = 250;
// Short, and repeated: a request sent while the client reconnects can be lost without an error.
// A host that takes longer to start answers a later repeat (the node queues them).
const HANDSHAKE_TIMEOUT_MS = 1000;
const FOREVER_MS = 3_600_000;

export const DEFAULT_NATS_URL = "nats://127.0.0.1:4222";

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

/** The system's link to one remote node. */
class NodeLink implements Link {
  forget = () => {};
  private state: "open" | "closed" | "dead" = "open";
  private frameCb: (f: Frame) => void = () => {};
  private exitCb: (reason: string) => void = () => {};
  private readonly up: Subscription;
  /** The node's asks to the system, by the id we gave them, until HostProxy answers. */
  private readonly asks = new Map<number, Msg>();
  private nextId = 1;
  private inc: string | null = null;
  private watchdog: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly t: NatsTransport, readonly node: string) {
    this.up = t.nc.subscribe(t.subj.up(node), { callback: (err, msg) => void (err || this.fromNode(msg)) });
  }

  send(f: Frame): void {
    if (this.state !== "open") return;
    const { wire, subj } = this.t;
    switch (f.t) {
      case "init":
        return void this.handshake(f);
      case "req": {
        const to = this.subjectOf(f.to);
        if (f.id === 0) return wire.publish(to, encode(f));
        wire.request(to, encode(f), (f.timeoutMs ?? FOREVER_MS) + 1000).then(
          (bytes) => {
            const r = decodeFrame(bytes, "system");
            if (this.state !== "open") return;
            // A reply that is not one is refused, and the asker told so (not left waiting).
            if (isBad(r) || r.t !== "rep") {
              const e = new ActorError(`${f.to}: invalid reply from node:${this.node} (${isBad(r) ? r.invalid : r.t})`, "unreachable", f.to);
              return this.frameCb({ t: "rep", id: f.id, error: e.toInfo() });
            }
            this.frameCb({ ...r, id: f.id });
          },
          (err) => this.requestFailed(f, err),
        );
        return;
      }
      case "rep": {
        const msg = this.asks.get(f.id);
        this.asks.delete(f.id);
        if (msg) wire.respond(msg, encode(f));
        return;
      }
      case "ctl":
        return wire.publish(subj.ctl(this.node), encode(f));
      case "stop":
        // A node outlives the gateway: it passivates on its own SIGTERM, not on ours.
        return queueMicrotask(() => this.frameCb({ t: "stopped" }));
    }
  }

  onFrame(cb: (f: Frame) => void): void {
    this.frameCb = cb;
  }

  onExit(cb: (reason: string) => void): void {
    this.exitCb = cb;
  }

  kill(reason = "killed"): void {
    this.die(reason);
  }

  close(): void {
    if (this.state === "open") this.state = "closed";
    this.release();
  }

  /** The node is gone (or unreachable): HostProxy fails or retries what was in flight, then re-opens. */
  die(reason: string): void {
    if (this.state !== "open") return;
    this.state = "dead";
    this.release();
    this.exitCb(`node:${this.node}: ${reason}`);
  }

  private release(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.up.unsubscribe();
    this.asks.clear();
    this.forget();
  }

  /** An actor placed on this node: its queue-group subject; one relocated here: the node's own. */
  private subjectOf(name: string): string {
    const served = this.t.node(this.node)?.actors;
    const id = parseId(name);
    if (!served || served.includes(`${id.kind}/${id.key}`)) return this.t.subj.actor(name);
    return directSubject(this.t.subj.prefix, this.node);
  }

  /** Ask until a node answers: it may not have started yet, or be restarting. */
  private async handshake(f: Frame): Promise<void> {
    while (this.state === "open") {
      try {
        const r = decodeFrame(await this.t.wire.request(this.t.subj.init(this.node), encode(f), HANDSHAKE_TIMEOUT_MS), "system");
        if (isBad(r) || (r.t !== "ready" && r.t !== "fatal")) throw new Error("not an answer to init");
        if (this.state !== "open") return;
        if (r.t === "fatal") return this.frameCb(r);
        this.inc = (r as { inc?: string }).inc ?? null;
        this.watchdog = setInterval(() => this.check(), HEARTBEAT_MS);
        return this.frameCb(r);
      } catch {
        await Bun.sleep(HANDSHAKE_RETRY_MS);
      }
    }
  }

  private check(): void {
    const info = this.t.node(this.node);
    if (!info || performance.now() - info.lastSeen > this.t.deadAfterMs) return this.die(`no heartbeat for ${this.t.deadAfterMs} ms`);
    if (this.inc && info.inc !== this.inc) this.die("the node restarted");
  }

  private async fromNode(msg: Msg): Promise<void> {
    let f: Frame;
    try {
      const r = decodeFrame(await this.t.wire.unpack(msg.data), "system");
      if (isBad(r)) throw new Error(r.invalid);
      f = r;
    } catch (err) {
      return console.error(`[nats] node:${this.node}: dropped an unreadable frame: ${errorText(err)}`);
    }
    if (this.state !== "open") return;
    if (f.t === "req" && f.id !== 0 && msg.reply) {
      const id = this.nextId++;
      this.asks.set(id, msg);
      return this.frameCb({ ...f, id });
    }
    this.frameCb(f);
  }

  private requestFailed(f: Extract<Frame, { t: "req" }>, err: unknown): void {
    if (this.state !== "open") return;
    const cause = (err as Error)?.cause ?? err;
    if (cause instanceof errors.TimeoutError) {
      // The system's own timer normally fires first; this one only guards a lost reply.
      const e = new ActorError(`ask to ${f.to} over NATS timed out`, "timeout", f.to);
      return this.frameCb({ t: "rep", id: f.id, error: e.toInfo() });
    }
    if (cause instanceof errors.NoRespondersError) return this.die(`no responder for ${f.to}`);
    this.die(`request to ${f.to} failed: ${errorText(err)}`);
  }
}
