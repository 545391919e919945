// The host side of the link protocol (frames.ts), shared by every kind of host: the in-process
// transport, the Worker entry (worker-host.ts) and the child-process entry (process-host.ts).
// It loads the registry its starter chose (HostSpec, never a frame) with the config of the init
// frame, runs a LocalHost, answers requests and forwards sends to actors placed elsewhere to the
// system. Every frame is checked (frames.ts) before it acts; an invalid one is dropped with a log
// line, and an invalid ask that still names its id is answered with an error so nobody waits.
//
//   Endpoint { send(frame), onFrame(cb) }; serveHost(endpoint, host, onStopped?)
import { ActorError, type ErrorInfo, errorText } from "./actor.ts";
import { DirectPeers, type DirectStats, type PeerPort } from "./direct.ts";
import { type Frame, type HostInit, checkFrame, isBad, logDropped } from "./frames.ts";
import { LocalHost, type Upstream, askTimeout } from "./host.ts";
import type { ReplyFn } from "./mailbox.ts";
import { loadRegistry } from "./registry.ts";
import type { HostSpec } from "./transport.ts";

export interface Endpoint {
  send(frame: Frame): void;
  /** Frames as they arrived (decoded, not yet checked). */
  onFrame(cb: (frame: unknown) => void): void;
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: ActorError): void;
  timer: ReturnType<typeof setTimeout> | null;
}

/** A Worker host's direct channels to its peers (direct.ts); the WorkerTransport hands them out. */
export interface Peers {
  add(location: string, port: PeerPort): void;
  drop(location: string): void;
  readonly stats: DirectStats;
}

export function serveHost(ep: Endpoint, spec: HostSpec, onStopped?: () => void): Peers {
  let host: LocalHost | null = null;
  let initialized = false;
  let nextId = 1;
  const pending = new Map<number, Pending>();
  const direct = new DirectPeers(() => host?.location ?? null, () => host?.placement ?? null, (to, msg, reply) =>
    host ? host.deliver(to, msg, reply) : reply(new ActorError(`${to}: host not initialized`, "unreachable", to)));

  /** Where the actor is placed: a peer's port goes there only while that peer is up (direct.ts). */
  const placedAt = (to: string): string | null => {
    try {
      return host?.placement.locate(to) ?? null;
    } catch {
      return null;
    }
  };

  const upstream: Upstream = {
    tell: (to, msg) => ep.send({ t: "req", id: 0, to, msg }),
    ask: (to, msg, timeoutMs, retry) => {
      const home = placedAt(to);
      return (home !== null && direct.ask(home, to, msg, timeoutMs, retry)) || viaSystem(to, msg, timeoutMs, retry);
    },
  };

  function viaSystem(to: string, msg: unknown, timeoutMs: number, retry: boolean): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const id = nextId++;
      const timer = Number.isFinite(timeoutMs)
        ? setTimeout(() => {
            pending.delete(id);
            reject(askTimeout(to, msg, timeoutMs));
          }, timeoutMs)
        : null;
      pending.set(id, { resolve, reject, timer });
      ep.send({ t: "req", id, to, msg, timeoutMs: Number.isFinite(timeoutMs) ? timeoutMs : undefined, retry });
    });
  }

  const replier = (id: number): ReplyFn | undefined => {
    if (id === 0) return undefined;
    return (err, value) => {
      if (err) return ep.send({ t: "rep", id, error: err.toInfo() });
      try {
        ep.send({ t: "rep", id, value });
      } catch (e) {
        // An unencodable reply is the handler's bug, but the asker must still hear about it.
        const info: ErrorInfo = { message: `reply could not be sent: ${errorText(e)}`, code: "handler" };
        ep.send({ t: "rep", id, error: info });
      }
    };
  };

  async function start(init: HostInit): Promise<void> {
    const t0 = performance.now();
    try {
      const registry = await loadRegistry(spec.registry, init.config);
      host = new LocalHost(init, registry, upstream, (event) => ep.send({ t: "ev", event }));
    } catch (err) {
      ep.send({ t: "fatal", error: `${init.location}: cannot load registry ${spec.registry.module}: ${errorText(err)}` });
      return;
    }
    ep.send({ t: "ready", ms: performance.now() - t0 });
  }

  const refuse = (raw: unknown, error: string) => {
    logDropped(`the system (host ${host?.location ?? "not initialized"})`, { invalid: error });
    const r = raw as { t?: unknown; id?: unknown };
    if (r?.t === "req" && Number.isSafeInteger(r.id) && (r.id as number) > 0) {
      ep.send({ t: "rep", id: r.id as number, error: { message: `refused: ${error}`, code: "unreachable" } });
    }
  };

  ep.onFrame((raw) => {
    const f = checkFrame(raw, "host");
    if (isBad(f)) return refuse(raw, f.invalid);
    switch (f.t) {
      case "init":
        // One host, one init: a second one (a stray or replayed frame) would reset nothing.
        if (initialized) return refuse(raw, "init after the host was initialized");
        initialized = true;
        void start(f.init);
        return;
      case "req": {
        const reply = replier(f.id);
        if (host) host.deliver(f.to, f.msg, reply);
        else reply?.(new ActorError(`${f.to}: host not initialized`, "unreachable", f.to));
        return;
      }
      case "rep": {
        const p = pending.get(f.id);
        if (!p) return; // timed out already
        pending.delete(f.id);
        if (p.timer) clearTimeout(p.timer);
        if (f.error) p.reject(ActorError.fromInfo(f.error));
        else p.resolve(f.value);
        return;
      }
      case "ctl":
        if (f.op === "passivate") host?.passivate(f.to);
        else host?.activate(f.to, f.restarted);
        return;
      case "stop":
        void (host?.stop() ?? Promise.resolve()).then(() => {
          ep.send({ t: "stopped" });
          onStopped?.();
        });
        return;
    }
  });
  return { add: (loc, port) => direct.add(loc, port), drop: (loc) => direct.drop(loc, viaSystem), stats: direct.stats };
}
