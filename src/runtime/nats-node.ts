// The node side of the NATS transport (see nats-transport.ts): what a `moe worker` process runs.
// It waits for the system's init on moe.SYS.node.NAME.init, starts a host for "node:NAME" in a Bun
// Worker (so heartbeats and NATS traffic never wait behind a GEMM on the actor thread), and then
// bridges: asks and tells on the subjects of the actors placed here go into the host; the host's
// replies go back as NATS replies; its own asks, tells and events go up to the system. While the
// host is up it publishes heartbeats carrying its incarnation and the actors it hosts.
// The actor kinds it runs are the registry it was started with (`moe worker` passes the project's
// own); frames off the bus only bring data and are checked (frames.ts) before they act.
//
//   serveNode({nc, registry, system?, node, rewriteInit?, log?}) -> NodeServer { stop(graceMs), inc }
import { type Msg, type NatsConnection, type Subscription, nuid } from "@nats-io/transport-node";
import { ActorError, errorText } from "./actor.ts";
import { encode } from "./codec.ts";
import { type Frame, type HostInit, decodeFrame, isBad } from "./frames.ts";
import { HEARTBEAT_MS, type Heartbeat, directSubject } from "./nats-transport.ts";
import { Wire, subjects } from "./nats-wire.ts";
import { type RegistryRef, resolveRegistryRef } from "./registry.ts";
import type { Link } from "./transport.ts";
import { WorkerTransport } from "./worker-transport.ts";

export interface NodeOptions {
  nc: NatsConnection;
  /** The actor kinds this node runs, fixed for its life (see registry.ts). */
  registry: RegistryRef;
  system?: string;
  node: string;
  /** Adjust the system's init for this node (e.g. its own path to the checkpoint). */
  rewriteInit?: (init: HostInit) => HostInit;
  /** Activate the node's actors as soon as the host is up (load weights now, not on first use). */
  warm?: boolean;
  log?: (line: string) => void;
}

export interface NodeServer {
  /** Changes with every host this process starts: a new one means a restarted node. */
  readonly inc: string;
  stop(graceMs?: number): Promise<void>;
}

const FOREVER_MS = 3_600_000;

export async function serveNode(o: NodeOptions): Promise<NodeServer> {
  const log = o.log ?? ((l: string) => console.error(`[node:${o.node}] ${l}`));
  const spec = { registry: resolveRegistryRef(o.registry) };
  /** A frame off the bus that a host may receive, or null (logged: never its payload). */
  const check = async (m: Msg, what: string): Promise<Frame | null> => {
    let f;
    try {
      f = decodeFrame(await wire.unpack(m.data), "host");
    } catch (err) {
      f = { invalid: errorText(err) };
    }
    if (!isBad(f)) return f;
    log(`dropped an invalid ${what} frame on ${m.subject}: ${f.invalid}`);
    return null;
  };
  const subj = subjects(o.system ?? "default");
  const wire = new Wire(o.nc, subj.prefix);
  const location = `node:${o.node}`;
  const proc = nuid.next();
  let gen = 0;
  let host: Link | null = null;
  let hostKey = "";
  let ready = false;
  let actorSubs: Subscription[] = [];
  let actors: string[] = [];
  const waiting: Msg[] = []; // init requests to answer once the host is ready
  const inbound = new Map<number, Msg>(); // asks from the system, by the id the host sees
  const active = new Set<string>();
  let nextId = 1;
  const inc = () => `${proc}.${gen}`;

  const toHost = (f: Frame) => host?.send(f);

  function startHost(init: HostInit): void {
    host?.close();
    for (const s of actorSubs) s.unsubscribe();
    actorSubs = [];
    active.clear();
    inbound.clear();
    ready = false;
    gen++;
    hostKey = JSON.stringify(init);
    const link = new WorkerTransport().open(location, spec);
    host = link;
    link.onFrame((f) => fromHost(link, f, init));
    link.onExit((reason) => {
      if (link !== host) return;
      // Stop advertising this incarnation: the system sees the node restart and re-inits it.
      log(`host died (${reason}); waiting for the system to start it again`);
      host = null;
      ready = false;
      hostKey = "";
      for (const s of actorSubs) s.unsubscribe();
      actorSubs = [];
    });
    link.send({ t: "init", init });
  }

  function fromHost(link: Link, f: Frame, init: HostInit): void {
    if (link !== host) return;
    switch (f.t) {
      case "ready":
        ready = true;
        subscribeActors(init);
        log(`host ready in ${f.ms.toFixed(0)} ms: ${actors.length} actor(s) ${actors.join(", ")}`);
        if (o.warm) for (const to of actors) toHost({ t: "ctl", op: "activate", to, restarted: false });
        for (const m of waiting.splice(0)) wire.respond(m, encode({ ...f, inc: inc() }));
        return;
      case "fatal":
        log(f.error);
        for (const m of waiting.splice(0)) wire.respond(m, encode(f));
        return;
      case "rep": {
        const m = inbound.get(f.id);
        inbound.delete(f.id);
        if (m) wire.respond(m, encode(f));
        return;
      }
      case "req":
        if (f.id === 0) return wire.publish(subj.up(o.node), encode(f));
        wire.request(subj.up(o.node), encode(f), (f.timeoutMs ?? FOREVER_MS) + 1000).then(
          (bytes) => {
            if (link !== host) return;
            const r = decodeFrame(bytes, "host");
            if (!isBad(r) && r.t === "rep") return toHost({ ...r, id: f.id });
            const e = new ActorError(`${f.to}: invalid reply from the system (${isBad(r) ? r.invalid : r.t})`, "unreachable", f.to);
            toHost({ t: "rep", id: f.id, error: e.toInfo() });
          },
          (err) => {
            const e = new ActorError(`${f.to}: the system could not be reached over NATS (${errorText(err)})`, "unreachable", f.to);
            if (link === host) toHost({ t: "rep", id: f.id, error: e.toInfo() });
          },
        );
        return;
      case "ev":
        if (f.event.type === "activated" || f.event.type === "restarted") active.add(f.event.actor);
        if (f.event.type === "passivated" || f.event.type === "failed") active.delete(f.event.actor);
        return wire.publish(subj.up(o.node), encode(f));
      case "stopped":
        return;
    }
  }

  /** The actors the placement puts on this node, one subscription per kind+key (a queue group). */
  function subscribeActors(init: HostInit): void {
    actors = init.placement.rules.filter((r) => r.location === location && r.kind && r.key !== undefined)
      .map((r) => `${r.kind}/${r.key}`);
    if (init.placement.rules.some((r) => r.location === location && (!r.kind || r.key === undefined))) {
      log("placement rules without kind and key are not served over NATS (the scaling configs always give both)");
    }
    for (const name of actors) {
      actorSubs.push(o.nc.subscribe(subj.actor(name), { queue: subj.actorQueue(name), callback: (err, m) => void (err || onActorMsg(m)) }));
    }
  }

  async function onActorMsg(m: Msg): Promise<void> {
    const f = await check(m, "actor");
    if (!f || f.t !== "req") {
      if (m.reply) wire.respond(m, encode({ t: "rep", id: 0, error: { message: "refused: not a valid request frame", code: "unreachable" } }));
      return;
    }
    if (!host || !ready) return; // no reply: the asker's link sees the node as gone
    if (f.id === 0 || !m.reply) return toHost({ ...f, id: 0 });
    const id = nextId++;
    inbound.set(id, m);
    toHost({ ...f, id });
  }

  async function onInit(m: Msg): Promise<void> {
    const f = await check(m, "init");
    if (f?.t !== "init") return;
    const init = o.rewriteInit ? o.rewriteInit(f.init) : f.init;
    // The same init again (the system re-opened its link after a blip): keep the warm host.
    if (host && JSON.stringify(init) === hostKey) {
      if (ready) return wire.respond(m, encode({ t: "ready", ms: 0, inc: inc() }));
      return void waiting.push(m);
    }
    log(`init from the system: starting the host`);
    waiting.push(m);
    startHost(init);
  }

  const subs = [
    o.nc.subscribe(subj.init(o.node), {
      queue: o.node,
      callback: (err, m) => void (err || onInit(m)),
    }),
    // Actors the system relocated here while their own node is lost (see directSubject).
    o.nc.subscribe(directSubject(subj.prefix, o.node), { queue: o.node, callback: (err, m) => void (err || onActorMsg(m)) }),
    o.nc.subscribe(subj.ctl(o.node), {
      callback: (err, m) => {
        if (err) return;
        void check(m, "ctl").then((f) => {
          // A re-opened link re-activates what was active; an actor still warm here needs nothing.
          if (f?.t === "ctl" && !(f.restarted && active.has(f.to))) toHost(f);
        });
      },
    }),
  ];

  const beat = (bye = false) => {
    if (!ready && !bye) return;
    const hb: Heartbeat = { node: o.node, inc: inc(), actors, bye };
    try {
      o.nc.publish(subj.hb(o.node), encode(hb));
    } catch {} // disconnected: the client buffers or drops; the next beat goes out after reconnect
  };
  const timer = setInterval(() => beat(), HEARTBEAT_MS);

  return {
    get inc() {
      return inc();
    },
    async stop(graceMs = 2000) {
      clearInterval(timer);
      beat(true);
      for (const s of [...subs, ...actorSubs]) s.unsubscribe();
      const h = host;
      host = null;
      if (h && ready) {
        // Let the actors passivate (release their memory) before the process goes.
        const stopped = new Promise<void>((r) => h.onFrame((f) => f.t === "stopped" && r()));
        h.send({ t: "stop" });
        await Promise.race([stopped, Bun.sleep(graceMs)]);
      }
      h?.close();
      wire.close();
    },
  };
}
