// Helpers shared by the commands: the flag tables (spec.ts), value checks, default model.
export * from "./spec.ts";
import { UsageError } from "./spec.ts";

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
  if (s.trim() === "" || !Number.isFinite(n) || !check(n)) throw new UsageError(`--${what}: bad value '${s}'`);
  return n;
}

/** The bundled default model. */
export const DEFAULT_MODEL = new URL("../../models/fortune-dsv3", import.meta.url).pathname;

export { DEFAULT_SCALING } from "./backend.ts";
