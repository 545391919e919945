// Small helpers shared by the CLI commands: argument parsing with clear errors.
import { parseArgs } from "node:util";

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export type OptionSpec = Record<string, { type: "string" | "boolean"; short?: string; default?: string | boolean }>;

export function parse<T extends OptionSpec>(argv: string[], options: T) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values as unknown as {
      [K in keyof T]: T[K]["type"] extends "boolean" ? boolean | undefined : string | undefined;
    };
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

export function intList(s: string | undefined, what: string): number[] {
  if (s === undefined || s.trim() === "") return [];
  return s.split(",").map((x) => {
    const n = Number(x.trim());
    if (!Number.isInteger(n) || n < 0) throw new UsageError(`${what}: '${x}' is not a token id`);
    return n;
  });
}

export function num(s: string | undefined, what: string, dflt: number, check: (n: number) => boolean = () => true): number {
  if (s === undefined) return dflt;
  const n = Number(s);
  if (!Number.isFinite(n) || !check(n)) throw new UsageError(`--${what}: bad value '${s}'`);
  return n;
}

/** The bundled default model. */
export const DEFAULT_MODEL = new URL("../../models/fortune-dsv3", import.meta.url).pathname;

export { DEFAULT_SCALING } from "./backend.ts";
