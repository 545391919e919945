// A small pool of Bun Workers running the model's tokenizer (worker.ts). Each job goes to the worker
// with the fewest jobs in flight; a worker that dies fails its jobs and is replaced.
import type { EncodeJob, EncodeResult, PromptEncoder } from "./prompt.ts";
import type { WorkerInbox, WorkerOutbox } from "./worker.ts";

interface Pending {
  resolve(r: EncodeResult): void;
  reject(e: Error): void;
}

class TokenizerWorker {
  readonly pending = new Map<number, Pending>();
  private readonly worker = new Worker(new URL("./worker.ts", import.meta.url).href);
  readonly ready: Promise<void>;

  constructor(modelDir: string, onDeath: (w: TokenizerWorker) => void) {
    this.ready = new Promise((resolve, reject) => {
      this.worker.onmessage = (ev: MessageEvent<WorkerOutbox>) => {
        const m = ev.data;
        if (m.type === "ready") return resolve();
        if (m.type === "failed") return reject(new Error(`tokenizer worker: ${m.message}`));
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.error !== undefined) p.reject(new Error(`tokenizer worker: ${m.error}`));
        else p.resolve(m.result ?? { ok: true, ids: Array.from(m.ids!) });
      };
      this.worker.onerror = (ev) => {
        const err = new Error(`tokenizer worker died: ${ev.message}`);
        reject(err);
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
        onDeath(this);
      };
    });
    this.worker.postMessage({ type: "init", modelDir } satisfies WorkerInbox);
  }

  run(id: number, job: EncodeJob): Promise<EncodeResult> {
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ type: "job", id, job } satisfies WorkerInbox);
    });
  }

  terminate(): void {
    this.worker.terminate();
    for (const p of this.pending.values()) p.reject(new Error("tokenizer pool closed"));
    this.pending.clear();
  }
}

export class TokenizerPool implements PromptEncoder {
  private workers: TokenizerWorker[] = [];
  private nextId = 0;
  private closed = false;

  private constructor(private readonly modelDir: string) {}

  /** Starts `size` workers and waits until each has loaded the tokenizer. */
  static async start(modelDir: string, size = 2): Promise<TokenizerPool> {
    const pool = new TokenizerPool(modelDir);
    for (let i = 0; i < Math.max(1, size); i++) pool.workers.push(pool.spawn());
    try {
      await Promise.all(pool.workers.map((w) => w.ready));
    } catch (err) {
      pool.close();
      throw err;
    }
    return pool;
  }

  private spawn(): TokenizerWorker {
    return new TokenizerWorker(this.modelDir, (dead) => {
      if (this.closed) return;
      const i = this.workers.indexOf(dead);
      if (i >= 0) this.workers[i] = this.spawn();
    });
  }

  /** Jobs sent to a worker and not answered yet. */
  get inFlight(): number {
    return this.workers.reduce((n, w) => n + w.pending.size, 0);
  }

  encode(job: EncodeJob): Promise<EncodeResult> {
    if (this.closed) return Promise.reject(new Error("tokenizer pool closed"));
    const w = this.workers.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    return w.ready.then(() => w.run(this.nextId++, job));
  }

  close(): void {
    this.closed = true;
    for (const w of this.workers) w.terminate();
  }
}
