// Reading a HostSpec back where a host starts (Worker data, a child's argv). It came from the
// process that created the host, but it still goes through the same gate as any ref: a file of
// this project, nothing else (resolveRegistryRef).
import { z } from "zod";
import { resolveRegistryRef } from "./registry.ts";
import type { HostSpec } from "./transport.ts";

const specSchema = z.strictObject({
  registry: z.strictObject({ module: z.string().min(1), export: z.string().min(1) }),
});

/** The HostSpec in `value`; throws (the host cannot start) when it is missing or not a file. */
export function hostSpecOf(value: unknown, where: string): HostSpec {
  const r = specSchema.safeParse(value);
  if (!r.success) throw new Error(`host: no valid host spec in ${where}: ${r.error.issues[0]?.message ?? "malformed"}`);
  return { registry: resolveRegistryRef(r.data.registry) };
}
