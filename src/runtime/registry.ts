// The actor kinds a system can host, handed over at start-up. A registry lives in a module that
// every host (main thread, each Worker, each child process) imports by path for itself, so kinds
// never have to be serialized and the runtime never imports actors/.
//
//   Registry = ReadonlyMap<kind, Actor>; defineRegistry(...actors)
//   RegistryRef {module, export?}: the module path (absolute, or relative to the cwd) and export name
//   RegistryExport: what that export may be: a Registry, a {kind: Actor} record, an Actor[] or a
//     (config) => any of those (sync or async), for kinds that need set-up from the system config
//   loadRegistry(ref, config); resolveRegistryRef(ref)
//
// The ref is chosen by the process that starts a host (SystemOptions.registry, `moe worker`) and
// handed to the host when it is created, never in a frame. Only files are accepted: a data:,
// http: or blob: URL would be code that came from somewhere other than this project's tree.
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Actor } from "./actor.ts";

export type AnyActor = Actor<any, any, any>;
export type Registry = ReadonlyMap<string, AnyActor>;

type RegistryValue = Registry | Readonly<Record<string, AnyActor>> | readonly AnyActor[];
export type RegistryExport = RegistryValue | ((config: unknown) => RegistryValue | Promise<RegistryValue>);

export interface RegistryRef {
  readonly module: string;
  /** Default "registry". */
  readonly export?: string;
}

export function defineRegistry(...actors: AnyActor[]): Registry {
  return toRegistry(actors);
}

function toRegistry(value: RegistryValue): Registry {
  const entries: [string, AnyActor][] =
    value instanceof Map ? [...value] : Array.isArray(value) ? value.map((a) => [a.kind, a]) : Object.entries(value);
  const out = new Map<string, AnyActor>();
  for (const [kind, def] of entries) {
    if (!def || typeof def.activate !== "function" || typeof def.handle !== "function") {
      throw new Error(`registry: "${kind}" is not an actor definition (needs activate and handle)`);
    }
    if (def.kind !== kind) throw new Error(`registry: entry "${kind}" defines kind "${def.kind}"`);
    if (out.has(kind)) throw new Error(`registry: kind "${kind}" is defined twice`);
    out.set(kind, def);
  }
  return out;
}

/** Absolute file URL of the module, so that workers and child processes resolve it the same way. */
export function resolveRegistryRef(ref: RegistryRef): Required<RegistryRef> {
  const m = ref.module;
  if (typeof m !== "string" || m === "") throw new Error("registry: the module must be a file path");
  // Two letters or more: "C:" style drive letters stay paths.
  const scheme = /^([a-z][a-z0-9+.-]+):/i.exec(m)?.[1]?.toLowerCase();
  if (scheme !== undefined && scheme !== "file") {
    throw new Error(`registry: refusing module "${m.slice(0, 48)}": only files of this project are loaded, not ${scheme}: URLs`);
  }
  const url = scheme ? m : pathToFileURL(isAbsolute(m) ? m : resolve(m)).href;
  return { module: url, export: ref.export ?? "registry" };
}

export async function loadRegistry(ref: RegistryRef, config: unknown): Promise<Registry> {
  const { module, export: name } = resolveRegistryRef(ref);
  const mod = (await import(module)) as Record<string, unknown>;
  const exp = mod[name] as RegistryExport | undefined;
  if (exp === undefined) throw new Error(`registry: ${module} has no export "${name}"`);
  return toRegistry(typeof exp === "function" ? await exp(config) : exp);
}
