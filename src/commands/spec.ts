// Flag tables, usage texts and argument parsing for the commands and scripts. It imports nothing
// else, so a script that is also a registry module (hosts load it) pulls in nothing more. Each
// command declares its flags once, in a table (a parseArgs option plus what the usage text says
// about it); the same table parses argv and writes the usage, so no accepted flag can be missing
// from `--help`. A usage error is a UsageError: the caller prints it with the usage on stderr and
// exits 2; `--help` prints the usage on stdout and exits 0.
import { parseArgs } from "node:util";

export class UsageError extends Error {
  /** The usage text of the command that refused the arguments, when known. */
  usage?: string;
  constructor(message: string, usage?: string) {
    super(message);
    this.name = "UsageError";
    this.usage = usage;
  }
}

/** `--help` was given: not an error, the caller prints `usage` on stdout and exits 0. */
export class HelpRequested extends Error {
  constructor(readonly usage: string) {
    super("help requested");
    this.name = "HelpRequested";
  }
}

export interface Flag {
  type: "string" | "boolean";
  short?: string;
  default?: string | boolean;
  /** The value's placeholder in the usage text (N, DIR, FILE); string flags only. */
  arg?: string;
  /** One line for the usage text: what the flag does, and its default where it has one. */
  help: string;
}

export type Flags = Record<string, Flag>;

/** A command or script: how it is invoked, what it does, and the flags it accepts. */
export interface CommandSpec {
  /** How it is run, as the README writes it: "moe serve", "npx bun scripts/bench.ts". */
  name: string;
  summary: string;
  flags: Flags;
  /** Lines after the flag list (choices of flags that go together, environment variables). */
  notes?: string;
}

/** Every spec takes --help (-h). */
export const HELP_FLAG: Flag = { type: "boolean", short: "h", help: "print this help and exit" };

export function usage(spec: CommandSpec): string {
  const flags = { ...spec.flags, help: HELP_FLAG };
  const left = (name: string, f: Flag) => `${f.short ? `-${f.short}, ` : "    "}--${name}${f.type === "string" ? ` ${f.arg ?? "VALUE"}` : ""}`;
  const width = Math.max(...Object.entries(flags).map(([n, f]) => left(n, f).length));
  const lines = Object.entries(flags).map(([n, f]) => `  ${left(n, f).padEnd(width)}  ${f.help}`);
  return [`usage: ${spec.name} [options]`, `${spec.summary}`, "", "options:", ...lines, ...(spec.notes ? ["", spec.notes] : [])].join("\n");
}

type Values<F extends Flags> = { [K in keyof F]: F[K]["type"] extends "boolean" ? boolean | undefined : string | undefined };

export type OptionSpec = Record<string, { type: "string" | "boolean"; short?: string; default?: string | boolean }>;

/** Parses argv against a bare parseArgs table (serve's, whose usage text is written by hand). */
export function parse<T extends OptionSpec>(argv: string[], options: T) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values as unknown as {
      [K in keyof T]: T[K]["type"] extends "boolean" ? boolean | undefined : string | undefined;
    };
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** The parseArgs table of a spec (with --help). */
export function optionsOf(spec: CommandSpec): OptionSpec {
  const table = (f: Flag) => ({ type: f.type, ...(f.short ? { short: f.short } : {}), ...(f.default !== undefined ? { default: f.default } : {}) });
  return Object.fromEntries(Object.entries({ ...spec.flags, help: HELP_FLAG }).map(([n, f]) => [n, table(f)]));
}

/** Parses argv against the spec's table: throws HelpRequested for --help, UsageError (with the
 * usage attached) for an unknown flag, a missing value or a stray positional argument. */
export function parseSpec<S extends CommandSpec>(argv: string[], spec: S): Values<S["flags"]> {
  let values: Record<string, unknown>;
  try {
    values = parseArgs({ args: argv, options: optionsOf(spec), strict: true, allowPositionals: false }).values;
  } catch (e) {
    throw new UsageError((e as Error).message, usage(spec));
  }
  if (values.help) throw new HelpRequested(usage(spec));
  return values as Values<S["flags"]>;
}

/**
 * For scripts: parse, or print the usage and exit (0 for --help; 2, on stderr, for a usage
 * error). `check` may throw UsageError for values that parse but make no sense.
 */
export function parseOrExit<S extends CommandSpec>(argv: string[], spec: S, check?: (v: Values<S["flags"]>) => void): Values<S["flags"]> {
  try {
    const v = parseSpec(argv, spec);
    check?.(v);
    return v;
  } catch (e) {
    if (e instanceof HelpRequested) {
      console.log(e.usage);
      process.exit(0);
    }
    if (e instanceof UsageError) {
      console.error(`${spec.name}: ${e.message}\n${e.usage ?? usage(spec)}`);
      process.exit(2);
    }
    throw e;
  }
}
