// The runtime's observable event log: lifecycle of actors and hosts, with timings. The CLI prints
// it (formatEvent), metrics count it, tests wait on it (next).
//
//   RuntimeEvent (union on `type`); EventLog { emit, on(cb) -> unsubscribe, recent(), next(pred, ms) }
//   formatEvent(e): string

export type RuntimeEvent =
  | { type: "activated"; actor: string; location: string; ms: number; at: number }
  | { type: "restarted"; actor: string; location: string; ms: number; cause: string; at: number }
  | { type: "passivated"; actor: string; location: string; ms: number; idleMs: number; at: number }
  | {
      type: "failed";
      actor: string;
      location: string;
      phase: "activate" | "handle" | "passivate";
      error: string;
      msgType?: string;
      at: number;
    }
  | { type: "host_up"; location: string; ms: number; restart: boolean; at: number }
  | { type: "host_down"; location: string; reason: string; inFlight: number; at: number }
  // An actor's messages go to `location` from now on, instead of `from`: its host was lost (and
  // `location` is a fallback), or is back (and `location` is its home).
  | { type: "relocated"; actor: string; location: string; from: string; reason: string; at: number }
  // The scaler set a kind's hosts to `replicas` (from `from`) for this backlog; `hosts` serve it
  // now, and `location` (its base) when there are none.
  | { type: "scaled"; kind: string; location: string; replicas: number; from: number; backlog: number; hosts: string[]; at: number };

export type EventType = RuntimeEvent["type"];

export class EventLog {
  private readonly ring: RuntimeEvent[] = [];
  private readonly listeners = new Set<(e: RuntimeEvent) => void>();

  constructor(private readonly capacity = 1000) {}

  emit(e: RuntimeEvent): void {
    this.ring.push(e);
    if (this.ring.length > this.capacity) this.ring.splice(0, this.ring.length - this.capacity);
    for (const cb of this.listeners) {
      try {
        cb(e);
      } catch {
        // A broken listener (a metrics hook) must not break the runtime that reports to it.
      }
    }
  }

  on(cb: (e: RuntimeEvent) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  /** The last `capacity` events, oldest first. */
  recent(): readonly RuntimeEvent[] {
    return this.ring.slice();
  }

  /** The next event (from now on) that matches; rejects after timeoutMs. */
  next(pred: (e: RuntimeEvent) => boolean, timeoutMs = 10_000): Promise<RuntimeEvent> {
    return new Promise((resolve, reject) => {
      const off = this.on((e) => {
        if (!pred(e)) return;
        off();
        clearTimeout(timer);
        resolve(e);
      });
      const timer = setTimeout(() => {
        off();
        reject(new Error(`no matching runtime event within ${timeoutMs} ms`));
      }, timeoutMs);
    });
  }
}

const ms = (x: number) => `${x.toFixed(1)} ms`;

export function formatEvent(e: RuntimeEvent): string {
  switch (e.type) {
    case "activated":
      return `${e.actor} activated on ${e.location} in ${ms(e.ms)}`;
    case "restarted":
      return `${e.actor} restarted on ${e.location} in ${ms(e.ms)} (after: ${e.cause})`;
    case "passivated":
      return `${e.actor} passivated on ${e.location} after ${ms(e.idleMs)} idle (${ms(e.ms)})`;
    case "failed":
      return `${e.actor} failed on ${e.location} in ${e.phase}${e.msgType ? ` of "${e.msgType}"` : ""}: ${e.error}`;
    case "host_up":
      return `${e.location} ${e.restart ? "restarted" : "started"} in ${ms(e.ms)}`;
    case "host_down":
      return `${e.location} died (${e.reason}) with ${e.inFlight} message(s) in flight`;
    case "relocated":
      return `${e.actor} relocated from ${e.from} to ${e.location} (${e.reason})`;
    case "scaled":
      return `${e.kind} scaled from ${e.from} to ${e.replicas} host(s) at backlog ${e.backlog}${e.hosts?.length ? ` (${e.hosts.join(", ")})` : ""}`; // tolerant: logs replay events of any shape
  }
}
