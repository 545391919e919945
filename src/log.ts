// The server's log: one line per request and per event worth an operator's attention, on stderr
// (stdout carries results). Two formats with the same content: `text`, for a terminal
// (`ts LEVEL msg key=value ...`, logfmt-style so it greps), and `json`, one object per line with fixed
// field names (`ts`, `level`, `msg`, then the caller's fields: `event`, `request_id`, ...) for a log
// pipeline (Loki, Elasticsearch, CloudWatch).

export const LOG_FORMATS = ["text", "json"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type LogValue = string | number | boolean | null | undefined;
export type LogFields = Record<string, LogValue>;

export interface LoggerOptions {
  format?: LogFormat; // default text
  level?: LogLevel; // lines below it are dropped (default info)
  /** Where finished lines go (each ends with "\n"); default stderr. Tests pass an array's push. */
  write?: (line: string) => void;
  /** Fields every line carries (a child logger adds its own). */
  fields?: LogFields;
}

export interface LineOptions {
  /** The text form shows `msg` alone: it already says what the fields say (the JSON form keeps them). */
  brief?: boolean;
}

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export class Logger {
  readonly format: LogFormat;
  readonly level: LogLevel;
  private readonly write: (line: string) => void;
  private readonly fields: LogFields;

  constructor(o: LoggerOptions = {}) {
    this.format = o.format ?? "text";
    this.level = o.level ?? "info";
    this.write = o.write ?? ((line) => void process.stderr.write(line));
    this.fields = o.fields ?? {};
  }

  /** A logger whose lines also carry `fields` (say, `{ component: "engine" }`). */
  child(fields: LogFields): Logger {
    return new Logger({ format: this.format, level: this.level, write: this.write, fields: { ...this.fields, ...fields } });
  }

  enabled(level: LogLevel): boolean {
    return RANK[level] >= RANK[this.level];
  }

  debug(msg: string, fields?: LogFields, o?: LineOptions): void {
    this.log("debug", msg, fields, o);
  }

  info(msg: string, fields?: LogFields, o?: LineOptions): void {
    this.log("info", msg, fields, o);
  }

  warn(msg: string, fields?: LogFields, o?: LineOptions): void {
    this.log("warn", msg, fields, o);
  }

  error(msg: string, fields?: LogFields, o?: LineOptions): void {
    this.log("error", msg, fields, o);
  }

  log(level: LogLevel, msg: string, fields: LogFields = {}, o: LineOptions = {}): void {
    if (!this.enabled(level)) return;
    const all = { ...this.fields, ...fields };
    const ts = new Date().toISOString();
    try {
      this.write(this.format === "json" ? jsonLine(ts, level, msg, all) : textLine(ts, level, msg, o.brief ? {} : all));
    } catch {
      // a closed stderr must not take a request down with it
    }
  }
}

function jsonLine(ts: string, level: LogLevel, msg: string, fields: LogFields): string {
  const o: Record<string, unknown> = { ts, level, msg };
  for (const [k, v] of Object.entries(fields)) if (v !== undefined && !(k in o)) o[k] = v;
  return JSON.stringify(o) + "\n";
}

function textLine(ts: string, level: LogLevel, msg: string, fields: LogFields): string {
  let s = `${ts} ${level.toUpperCase().padEnd(5)} ${oneLine(msg)}`;
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined || v === null || k === "event") continue; // `event` is msg's machine-readable twin
    s += ` ${k}=${textValue(v)}`;
  }
  return s + "\n";
}

/** Bare when it can be, quoted (JSON string escapes) when it has spaces, quotes or `=`. */
function textValue(v: string | number | boolean): string {
  if (typeof v === "number") return String(Math.round(v * 100) / 100);
  const s = String(v);
  return s === "" || /[\s"=\\]/.test(s) ? JSON.stringify(s) : s;
}

function oneLine(s: string): string {
  return s.replace(/\r?\n/g, "\\n");
}

/** `--log-format`'s value, or an error naming the choices. */
export function parseLogFormat(s: string | undefined): LogFormat {
  if (s === undefined) return "text";
  if ((LOG_FORMATS as readonly string[]).includes(s)) return s as LogFormat;
  throw new Error(`--log-format ${s}: expected ${LOG_FORMATS.join(" or ")}`);
}

/** `--log-level`'s value, or an error naming the choices. */
export function parseLogLevel(s: string | undefined): LogLevel {
  if (s === undefined) return "info";
  if ((LOG_LEVELS as readonly string[]).includes(s)) return s as LogLevel;
  throw new Error(`--log-level ${s}: expected one of ${LOG_LEVELS.join(", ")}`);
}
