// Direct channels between Worker hosts (issue 14, "fewer hops"): an ask from one worker to an
// actor placed on another goes over a MessagePort between the two instead of through the main
// thread (one hop instead of two). The main thread stays the authority on routes:
//  - a port to a peer is handed out by the WorkerTransport only once that peer's host is ready
//    (the same moment the system routes its actors home again), and a "peer down" follows at
//    once when that Worker dies or is stopped (the moment the system starts relocating them);
//  - a host uses a port only for actors whose placed location is that peer; an actor away from
//    its placed location (fallbacks, relocation) is away only while its home is lost, i.e. while
//    no port to that home exists; autoscaled kinds are never placed on a worker: never direct;
//  - asks in flight on a port whose peer went down are sent again through the system with what
//    is left of their deadline when they allow a retry, or fail "host_down" otherwise, as the
//    system does for asks in flight to a host that dies.
//
//   DirectPeers(here, send, deliver) { add(location, port), drop(location), route(to, location),
//     ask(location, to, msg, timeoutMs, retry, viaSystem): Promise | null }
import { ActorError, type ErrorInfo, errorText, parseId } from "./actor.ts";
import { decode, encodeOwned } from "./codec.ts";
import { type Frame, checkFrame, isBad, logDropped } from "./frames.ts";
import { askTimeout } from "./host.ts";
import type { ReplyFn } from "./mailbox.ts";
import { type Placement, schemeOf } from "./placement.ts";

/** A channel's end: a MessagePort handed over by the WorkerTransport. */
export type PeerPort = MessagePort;

interface DirectAsk {
  via: string;
  to: string;
  msg: unknown;
  ms: number;
  deadline: number;
  retry: boolean;
  resolve(v: unknown): void;
  reject(e: unknown): void;
  timer: ReturnType<typeof setTimeout> | null;
}

/** Counts for tests and benchmarks: asks that went direct, and sent again through the system. */
export interface DirectStats {
  sent: number;
  resent: number;
}

/** Where tests and benchmarks read a Worker's direct-channel counts (DirectStats). */
export const DIRECT_STATS = Symbol.for("moe.runtime.direct");

export class DirectPeers {
  private readonly ports = new Map<string, PeerPort>();
  private readonly pending = new Map<number, DirectAsk>();
  private nextId = 1;
  readonly stats: DirectStats = { sent: 0, resent: 0 };

  constructor(
    private readonly here: () => string | null,
    private readonly placement: () => Placement | null,
    private readonly deliver: (to: string, msg: unknown, reply: ReplyFn) => void,
  ) {}

  add(location: string, port: PeerPort): void {
    this.drop(location); // a restarted peer: the old port led to a dead Worker
    this.ports.set(location, port);
    port.onmessage = (e) => this.onFrame(location, port, e.data);
  }

  /** The peer is gone: forget its port and settle what was in flight there. */
  drop(location: string, viaSystem?: (to: string, msg: unknown, ms: number, retry: boolean) => Promise<unknown>): void {
    const port = this.ports.get(location);
    if (!port) return;
    this.ports.delete(location);
    port.onmessage = null;
    port.close();
    for (const [id, a] of [...this.pending]) {
      if (a.via !== location) continue;
      this.pending.delete(id);
      if (a.timer) clearTimeout(a.timer);
      const left = a.deadline - Date.now();
      if (a.retry && viaSystem && left > 0) {
        this.stats.resent++;
        viaSystem(this.otherReplica(a.to, location), a.msg, left, true).then(a.resolve, a.reject);
      } else if (left <= 0) a.reject(askTimeout(a.to, a.msg, a.deadline - Date.now() + left));
      else a.reject(new ActorError(`${a.to}: host ${location} died with the ask in flight`, "host_down", a.to));
    }
  }

  /** As the system retries an ask whose host died: another replica of the same kind+key whose
   * host is up and elsewhere, else the same actor (at a fallback, or once its host is back). */
  private otherReplica(name: string, dead: string): string {
    const p = this.placement();
    if (!p) return name;
    const id = parseId(name), n = p.replicasOf(id.kind, id.key);
    for (let k = 1; k < n; k++) {
      const other = `${id.kind}/${id.key}#${(id.replica + k) % n}`;
      const loc = p.locate(other);
      // a Worker is up while this host holds a port to it; other schemes are the system's to know
      if (loc !== dead && (loc === this.here() || this.ports.has(loc) || schemeOf(loc) !== "worker")) return other;
    }
    return name;
  }

  /** The ask over the port to `location`, or null when there is none (go through the system). */
  ask(location: string, to: string, msg: unknown, timeoutMs: number, retry: boolean): Promise<unknown> | null {
    const port = this.ports.get(location);
    if (!port || location === this.here()) return null;
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      const finite = Number.isFinite(timeoutMs);
      const timer = finite
        ? setTimeout(() => {
            this.pending.delete(id);
            reject(askTimeout(to, msg, timeoutMs));
          }, timeoutMs)
        : null;
      this.pending.set(id, { via: location, to, msg, ms: timeoutMs, deadline: finite ? Date.now() + timeoutMs : Infinity, retry, resolve, reject, timer });
      this.stats.sent++;
      post(port, { t: "req", id, to, msg, timeoutMs: finite ? timeoutMs : undefined, retry });
    });
  }

  private onFrame(from: string, port: PeerPort, bytes: unknown): void {
    let raw: unknown;
    try {
      raw = decode(bytes as Uint8Array);
    } catch (err) {
      return console.error(`[frames] dropped an undecodable frame from peer ${from}: ${errorText(err)}`);
    }
    const f = checkFrame(raw, "host");
    if (isBad(f)) return logDropped(`peer ${from}`, f);
    if (f.t === "req") {
      if (f.id === 0) return; // peers only ask
      return this.deliver(f.to, f.msg, (err, value) => {
        if (err) return post(port, { t: "rep", id: f.id, error: err.toInfo() });
        try {
          post(port, { t: "rep", id: f.id, value });
        } catch (e) {
          const info: ErrorInfo = { message: `reply could not be sent: ${errorText(e)}`, code: "handler" };
          post(port, { t: "rep", id: f.id, error: info });
        }
      });
    }
    if (f.t !== "rep") return logDropped(`peer ${from}`, { invalid: `a ${f.t} frame on a direct channel` });
    const a = this.pending.get(f.id);
    if (!a || a.via !== from) return; // timed out already, or not ours
    this.pending.delete(f.id);
    if (a.timer) clearTimeout(a.timer);
    if (f.error) a.reject(ActorError.fromInfo(f.error));
    else a.resolve(f.value);
  }
}

function post(port: PeerPort, f: Frame): void {
  const bytes = encodeOwned(f);
  port.postMessage(bytes, [bytes.buffer as ArrayBuffer]);
}
