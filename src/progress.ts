// Progress of long work (writing or loading a checkpoint, perplexity, GGUF conversion), always on
// stderr: stdout carries results and JSON. On a terminal a bar is redrawn in place; otherwise
// (a pipe, a log file, a Bun worker thread sharing the terminal with others) a plain line is
// written at each tenth of the work, and only once the work has lasted a second, so a quick job
// prints just its final line and a long one a dozen, never thousands.
//   progress(label, total, {unit, stream, mode, idleEndMs}) -> {add(n), set(done), end(note?)}
// MOE_PROGRESS=bar|lines|off overrides the mode chosen from the stream.
import { isMainThread } from "node:worker_threads";

export type ProgressMode = "bar" | "lines" | "off";

export interface ProgressOptions {
  /** "bytes" shows MiB/GiB; "count" plain numbers (windows, tensors). */
  unit?: "bytes" | "count";
  stream?: { write(s: string): unknown; isTTY?: boolean };
  mode?: ProgressMode;
  /** End by itself (with its summary line) after this long without progress: for work whose end
   * nobody announces, such as weights read lazily as a model first asks for them. */
  idleEndMs?: number;
  /** A plain line is not written before this long has passed since the start. Default 1000. */
  quietMs?: number;
}

export interface Progress {
  add(n: number): void;
  set(done: number): void;
  /** Writes the final line (once); later calls do nothing. */
  end(note?: string): void;
  readonly ended: boolean;
}

const BAR = 24;
const REDRAW_MS = 100;

export function progressMode(stream: { isTTY?: boolean } = process.stderr): ProgressMode {
  const env = process.env.MOE_PROGRESS;
  if (env === "bar" || env === "lines" || env === "off") return env;
  return stream.isTTY && isMainThread ? "bar" : "lines";
}

export function formatAmount(n: number, unit: "bytes" | "count"): string {
  if (unit === "count") return String(Math.round(n));
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  return `${(n / 2 ** 20).toFixed(1)} MiB`;
}

export function progress(label: string, total: number, o: ProgressOptions = {}): Progress {
  const stream = o.stream ?? process.stderr;
  const mode = o.mode ?? progressMode(stream);
  const unit = o.unit ?? "count";
  const quietMs = o.quietMs ?? 1000;
  const t0 = performance.now();
  let done = 0, ended = false, lastDraw = -Infinity, tenth = 0, drawn = false;
  let idle: ReturnType<typeof setTimeout> | undefined;
  const secs = () => ((performance.now() - t0) / 1000).toFixed(1);
  const amount = () => (total > 0 ? `${formatAmount(done, unit)}/${formatAmount(total, unit)}` : formatAmount(done, unit));
  const pct = () => (total > 0 ? Math.min(100, Math.floor((100 * done) / total)) : 0);

  const draw = (force: boolean) => {
    const now = performance.now();
    if (mode === "bar") {
      if (!force && now - lastDraw < REDRAW_MS) return;
      lastDraw = now;
      const fill = total > 0 ? Math.min(BAR, Math.round((BAR * done) / total)) : 0;
      stream.write(`\r${label} [${"#".repeat(fill)}${".".repeat(BAR - fill)}] ${String(pct()).padStart(3)}% ${amount()} ${secs()} s\x1b[K`);
      drawn = true;
    } else if (mode === "lines") {
      const t = total > 0 ? Math.floor((10 * done) / total) : 0;
      if (t <= tenth || now - t0 < quietMs) return;
      tenth = t;
      if (t < 10) stream.write(`${label}: ${pct()}% (${amount()}, ${secs()} s)\n`);
    }
  };

  const self: Progress = {
    get ended() {
      return ended;
    },
    add(n) {
      self.set(done + n);
    },
    set(d) {
      if (ended) return;
      done = d;
      draw(false);
      if (o.idleEndMs !== undefined) {
        clearTimeout(idle);
        idle = setTimeout(() => self.end(), o.idleEndMs);
        (idle as { unref?: () => void }).unref?.();
      }
    },
    end(note) {
      if (ended) return;
      ended = true;
      clearTimeout(idle);
      if (mode === "off") return;
      const line = `${label}: ${note ?? amount()} in ${secs()} s`;
      stream.write(mode === "bar" && drawn ? `\r${line}\x1b[K\n` : `${line}\n`);
    },
  };
  return self;
}
