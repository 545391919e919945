// Shared set-up for the runtime tests: a system over the test kinds, stopped after each test.
import { afterEach } from "bun:test";
import { ActorSystem, type SystemOptions } from "../../src/runtime/index.ts";

export const KINDS = new URL("./kinds.ts", import.meta.url).pathname;

const started: ActorSystem[] = [];

afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.stop(500)));
});

export async function startSystem(opts: Partial<SystemOptions> = {}): Promise<ActorSystem> {
  const sys = await ActorSystem.start({ registry: { module: KINDS }, askTimeoutMs: 10_000, ...opts });
  started.push(sys);
  return sys;
}

/** The rejection of a promise that must reject. */
export async function rejection(p: Promise<unknown>): Promise<Error & { code?: string; actor?: string }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error("expected a rejection");
}
