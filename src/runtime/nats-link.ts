// The system's side of one remote node over NATS (the wire is described in nats-transport.ts): a
// Link that sends the node's frames as NATS requests and publishes, handshakes the init until the
// node answers, watches its heartbeats (no heartbeat for deadAfterMs, or a new incarnation: the
// node is dead), and routes an ask for an actor relocated to the node to the node's own subject.
//
//   HEARTBEAT_MS; directSubject(prefix, node); NodeInfo; NodeDirectory (what the link reads of its
//   transport); NodeLink(dir, node) implements Link { die(reason), forget }
import { type Msg, type NatsConnection, type Subscription, errors } from "@nats-io/transport-node";
import { ActorError, errorText, parseId } from "./actor.ts";
import { encode } from "./codec.ts";
import { type Frame, decodeFrame, isBad } from "./frames.ts";
import type { Wire, subjects } from "./nats-wire.ts";
import type { Link } from "./transport.ts";

export const HEARTBEAT_MS = 300;
const HANDSHAKE_RETRY_MS = 250;
// Short, and repeated: a request sent while the client reconnects can be lost without an error.
// A host that takes longer to start answers a later repeat (the node queues them).
const HANDSHAKE_TIMEOUT_MS = 1000;
const FOREVER_MS = 3_600_000;

/**
 * A node's own request subject: asks for actors it does not host by placement, i.e. actors the
 * system re-activated there while their host was lost (a fallback). Nobody else subscribes to it.
 */
export function directSubject(prefix: string, node: string): string {
  return `${prefix}.node.${node.replace(/[^A-Za-z0-9_-]/g, "_")}.req`;
}

/** What a node's heartbeats say about it. */
export interface NodeInfo {
  node: string;
  inc: string;
  actors: string[];
  lastSeen: number;
}

/** What a link needs of its transport (NatsTransport). */
export interface NodeDirectory {
  readonly nc: NatsConnection;
  readonly subj: ReturnType<typeof subjects>;
  readonly wire: Wire;
  readonly deadAfterMs: number;
  node(name: string): NodeInfo | undefined;
}

/** The system's link to one remote node. */
export class NodeLink implements Link {
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

  constructor(private readonly t: NodeDirectory, readonly node: string) {
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
