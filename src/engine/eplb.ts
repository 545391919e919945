// Online EPLB (DeepSeek's expert-parallel load balancer, run while serving): every period the
// routers' per-expert token counts since the last look (all layers, all routers) decide which
// experts are hot; the K hottest get a copy on the least loaded expert actor and copies of the
// others are dropped (replicateHot). A new table is switched in between steps, never under one:
//   1. the actors gaining an expert are told to hold it (weights read on first use);
//   2. every router installs the table as version v+1 (it keeps v for the steps still on it);
//   3. steps begun from now on name v+1 (ActorBackend.step asks begin() for the version);
//   4. once no step on v is left, the actors losing an expert drop it (its memory is freed).
// Outputs do not change: an expert's rows go whole to one holder and the router adds a token's
// experts in one fixed order (actors/router.ts). The runtime knows none of this: it is the
// engine's side of the model's protocol.
import { replicateHot } from "../config/expert-table.ts";
import { EXPERT, type ExpertMsg, type ExpertTable, ROUTER, type RouterMsg } from "../protocol.ts";

export interface EplbOptions {
  /** An idempotent ask (retried if the actor's host is lost). */
  ask(to: string, msg: RouterMsg | ExpertMsg): Promise<unknown>;
  routers: number;
  table: ExpertTable; // the scaling config's table: version 0
  hot: number; // replicate_hot: experts with a copy
  periodMs: number | null; // null: only when rebalance() is called
  /** Weight of the older windows in the hotness score (default 0.5: a window counts half the next). */
  decay?: number;
  onChange?(c: EplbChange): void;
  onError?(e: Error): void;
}

export interface EplbChange {
  version: number;
  hot: number[]; // experts with a copy now, hottest first
  held: Record<string, number[]>; // expert actors that took experts
  dropped: Record<string, number[]>; // expert actors that gave experts up
  table: ExpertTable;
}

/** Which experts each actor key holds under a table. */
function heldBy(table: ExpertTable): Map<string, Set<number>> {
  const out = new Map<string, Set<number>>();
  table.forEach((keys, e) => keys.forEach((k) => (out.get(k) ?? out.set(k, new Set()).get(k)!).add(e)));
  return out;
}

/** Experts under `a` but not `b`, per key (keys with none left out). */
function minus(a: Map<string, Set<number>>, b: Map<string, Set<number>>): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const [k, es] of a) {
    const only = [...es].filter((e) => !b.get(k)?.has(e));
    if (only.length) out[k] = only;
  }
  return out;
}

export class Eplb {
  private v = 0;
  private current: ExpertTable;
  private readonly inFlight = new Map<number, number>(); // table version -> steps running on it
  private readonly waiting: { upTo: number; done: () => void }[] = [];
  private score: number[] | null = null;
  private readonly seen = new Map<number, Record<number, number[]>>(); // router -> its last counts
  private running: Promise<EplbChange | null> | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly o: EplbOptions) {
    this.current = o.table.map((h) => [...h]);
    if (o.periodMs !== null) {
      this.timer = setInterval(() => {
        if (!this.running) this.rebalance().then((c) => c && o.onChange?.(c), (e: Error) => o.onError?.(e));
      }, o.periodMs);
      this.timer.unref?.();
    }
  }

  /** The table version steps begin on now, and its table. */
  get version(): number {
    return this.v;
  }

  get table(): ExpertTable {
    return this.current;
  }

  /** A step starts: it runs on the returned table version until end(). */
  begin(): number {
    this.inFlight.set(this.v, (this.inFlight.get(this.v) ?? 0) + 1);
    return this.v;
  }

  end(version: number): void {
    const n = (this.inFlight.get(version) ?? 1) - 1;
    if (n > 0) this.inFlight.set(version, n);
    else this.inFlight.delete(version);
    for (const w of this.waiting.splice(0)) this.whenDone(w.upTo, w.done);
  }

  private whenDone(upTo: number, done: () => void): void {
    if ([...this.inFlight.keys()].some((v) => v <= upTo)) this.waiting.push({ upTo, done });
    else done();
  }

  /** Tokens per expert routed since the last call (all layers, all routers). A router whose
   * counts went down was restarted: all it counted since is new. */
  private async window(): Promise<number[]> {
    const E = this.current.length, sum = new Array<number>(E).fill(0);
    await Promise.all(Array.from({ length: this.o.routers }, async (_, r) => {
      const now = (await this.o.ask(`${ROUTER}/${r}`, { type: "load" })) as Record<number, number[]>;
      const before = this.seen.get(r) ?? {};
      const restarted = Object.entries(now).some(([l, v]) => v.some((x, e) => x < (before[Number(l)]?.[e] ?? 0)));
      for (const [l, v] of Object.entries(now)) v.forEach((x, e) => (sum[e]! += x - (restarted ? 0 : (before[Number(l)]?.[e] ?? 0))));
      this.seen.set(r, now);
      // A restarted router began again from the scaling config's table: give it the current one.
      if (restarted && this.v > 0) await this.o.ask(`${ROUTER}/${r}`, { type: "table", version: this.v, table: this.current });
    }));
    return sum;
  }

  /** One look at the load; re-places the hot experts when the plan changed. Rounds never overlap. */
  rebalance(): Promise<EplbChange | null> {
    const run = (this.running ?? Promise.resolve(null)).catch(() => null).then(() => this.round());
    const mine = run.finally(() => {
      if (this.running === mine) this.running = null;
    });
    this.running = mine;
    return mine;
  }

  private async round(): Promise<EplbChange | null> {
    const load = await this.window(), decay = this.o.decay ?? 0.5;
    if (load.every((x) => x === 0)) return null; // nothing served since: nothing learnt, keep the table
    this.score = load.map((x, e) => x + decay * (this.score?.[e] ?? 0));
    const next = replicateHot(this.current, this.score, this.o.hot);
    if (JSON.stringify(next) === JSON.stringify(this.current)) return null;
    const before = heldBy(this.current), after = heldBy(next);
    const held = minus(after, before), dropped = minus(before, after), version = this.v + 1;
    await Promise.all(Object.entries(held).map(([k, experts]) => this.o.ask(`${EXPERT}/${k}`, { type: "hold", experts })));
    await Promise.all(Array.from({ length: this.o.routers }, (_, r) => this.o.ask(`${ROUTER}/${r}`, { type: "table", version, table: next })));
    const old = this.v;
    this.v = version;
    this.current = next;
    await new Promise<void>((done) => this.whenDone(old, done));
    await Promise.all(Object.entries(dropped).map(([k, experts]) => this.o.ask(`${EXPERT}/${k}`, { type: "drop", experts })));
    const hot = next.flatMap((h, e) => (h.length > 1 ? [e] : [])).sort((a, b) => this.score![b]! - this.score![a]! || a - b);
    return { version, hot, held, dropped, table: next };
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
