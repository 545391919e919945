// A closed bus, host side (issue 13 item 3): the registry a host runs is fixed when it starts,
// never named by a frame, and every frame is validated before it acts. Over every local
// transport, a host sent an init frame that names a data: module does not import it; malformed
// frames are refused (an ask with an id is answered with an error), and the host keeps serving.
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ActorSystem } from "../../src/runtime/index.ts";
import { type Frame, type HostInit, checkFrame, isBad } from "../../src/runtime/frames.ts";
import { resolveRegistryRef } from "../../src/runtime/registry.ts";
import { InProcessTransport, type Link, type Transport } from "../../src/runtime/transport.ts";
import { ProcessTransport } from "../../src/runtime/process-transport.ts";
import { WorkerTransport } from "../../src/runtime/worker-transport.ts";
import { KINDS, rejection } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "moe-frames-"));
const marker = join(dir, "imported");
/** A registry module that leaves a file behind when anything imports it. */
const EVIL = `data:text/javascript,${encodeURIComponent(
  `import { writeFileSync } from "node:fs"; writeFileSync(${JSON.stringify(marker)}, "pwned"); export const registry = [];`,
)}`;
const spec = { registry: resolveRegistryRef({ module: KINDS }) };

const init = (location: string): HostInit => ({
  location,
  placement: { rules: [], defaultLocation: location },
  config: {},
  idleTimeoutMs: {},
  askTimeoutMs: 10_000,
});

const links: Link[] = [];
afterEach(() => {
  for (const l of links.splice(0)) l.close();
  rmSync(marker, { force: true });
});

/** A link whose frames are queued, so a test can wait for the one it expects. */
function open(t: Transport, location: string) {
  const link = t.open(location, spec);
  links.push(link);
  const got: Frame[] = [];
  let wake = () => {};
  link.onFrame((f) => {
    got.push(f);
    wake();
  });
  const next = async (pred: (f: Frame) => boolean, ms = 20_000): Promise<Frame> => {
    const deadline = performance.now() + ms;
    for (;;) {
      const i = got.findIndex(pred);
      if (i >= 0) return got.splice(i, 1)[0]!;
      if (performance.now() > deadline) throw new Error(`no matching frame within ${ms} ms (got ${JSON.stringify(got)})`);
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 50);
      });
    }
  };
  return { link, got, next };
}

describe("frames are validated before they act", () => {
  const ok: [string, unknown, "host" | "system"][] = [
    ["init", { t: "init", init: init("worker:0") }, "host"],
    ["ask", { t: "req", id: 3, to: "echo/a", msg: { type: "echo", x: new Float32Array(4) }, timeoutMs: 100, retry: true }, "host"],
    ["tell", { t: "req", id: 0, to: "echo/a", msg: "hi" }, "system"],
    ["reply", { t: "rep", id: 3, value: new Uint8Array(2) }, "system"],
    ["error reply", { t: "rep", id: 3, error: { message: "x", code: "handler" } }, "host"],
    ["ctl", { t: "ctl", op: "activate", to: "echo/a#0", restarted: true }, "host"],
    ["stop", { t: "stop" }, "host"],
    ["ready", { t: "ready", ms: 1.5, inc: "abc.1" }, "system"],
    ["fatal", { t: "fatal", error: "cannot load" }, "system"],
    ["event", { t: "ev", event: { type: "activated", actor: "echo/a#0", location: "worker:0", ms: 1, at: 2 } }, "system"],
  ];
  for (const [what, f, side] of ok) test(`accepts a valid ${what} frame`, () => expect(isBad(checkFrame(f, side))).toBe(false));

  const bad: [string, unknown, "host" | "system"][] = [
    ["an init naming a registry module", { t: "init", init: { ...init("worker:0"), registry: { module: EVIL, export: "registry" } } }, "host"],
    ["an init without a placement", { t: "init", init: { ...init("worker:0"), placement: undefined } }, "host"],
    ["a frame with no tag", { id: 1, to: "echo/a" }, "host"],
    ["an unknown tag", { t: "eval", code: "1" }, "host"],
    ["an ask with a negative id", { t: "req", id: -1, to: "echo/a", msg: 1 }, "host"],
    ["an ask with no target", { t: "req", id: 1, msg: 1 }, "host"],
    ["an ask with an extra field", { t: "req", id: 1, to: "echo/a", msg: 1, module: EVIL }, "host"],
    ["a ctl with an unknown op", { t: "ctl", op: "load", to: "echo/a", restarted: false }, "host"],
    ["an error reply with an unknown code", { t: "rep", id: 1, error: { message: "x", code: "root" } }, "host"],
    ["a ready sent to a host", { t: "ready", ms: 1 }, "host"],
    ["an init sent to the system", { t: "init", init: init("worker:0") }, "system"],
    ["a host claiming a host_down event", { t: "ev", event: { type: "host_down", location: "x", reason: "y", inFlight: 0, at: 1 } }, "system"],
    ["not an object", "req", "system"],
    ["null", null, "host"],
  ];
  for (const [what, f, side] of bad) {
    test(`refuses ${what}`, () => {
      const r = checkFrame(f, side);
      expect(isBad(r)).toBe(true);
    });
  }

  test("the system refuses a registry that is not a file of this project, and never imports it", async () => {
    const err = await rejection(ActorSystem.start({ registry: { module: EVIL }, placement: [{ kind: "echo", location: "worker:0" }] }));
    expect(err.message).toContain("only files of this project are loaded");
    expect(existsSync(marker)).toBe(false);
  });
});

const transports: [string, () => Transport, string][] = [
  ["inprocess", () => new InProcessTransport(), "inprocess"],
  ["worker", () => new WorkerTransport(), "worker:0"],
  ["process", () => new ProcessTransport(), "process:0"],
];

for (const [name, make, location] of transports) {
  describe(`a ${name} host`, () => {
    test("ignores an init frame naming another registry module (a data: URL) and runs its own", async () => {
      const h = open(make(), location);
      h.link.send({ t: "init", init: { ...init(location), registry: { module: EVIL, export: "registry" } } } as unknown as Frame);
      // A valid init after it: the host answers it, so the bad one has been handled by then.
      h.link.send({ t: "init", init: init(location) });
      await h.next((f) => f.t === "ready" || f.t === "fatal");
      expect(existsSync(marker)).toBe(false);
      // The kinds are the ones the host was started with (test/runtime/kinds.ts).
      h.link.send({ t: "req", id: 7, to: "echo/a", msg: { type: "echo", v: 1 } });
      const rep = (await h.next((f) => f.t === "rep")) as Extract<Frame, { t: "rep" }>;
      expect(rep.error).toBeUndefined();
      expect(existsSync(marker)).toBe(false);
    }, 30_000);

    test("refuses malformed frames: an ask with an id is answered with an error, the rest dropped; serving goes on", async () => {
      const h = open(make(), location);
      h.link.send({ t: "init", init: init(location) });
      expect((await h.next((f) => f.t === "ready" || f.t === "fatal")).t).toBe("ready");
      const junk = [
        { t: "req", id: 11, to: 42, msg: {} }, // target not a name: answered
        { t: "req", id: 12, to: "echo/a", msg: {}, code: "x" }, // unknown field: answered
        { t: "ctl", op: "activate", to: "echo/a" }, // no restarted flag: dropped
        { t: "init", init: init(location) }, // a second init: dropped
        { t: "nope" },
      ];
      for (const f of junk) h.link.send(f as unknown as Frame);
      h.link.send({ t: "req", id: 13, to: "echo/a", msg: { type: "echo", v: 2 } });
      const replies = new Map<number, Extract<Frame, { t: "rep" }>>();
      for (let i = 0; i < 3; i++) {
        const r = (await h.next((f) => f.t === "rep")) as Extract<Frame, { t: "rep" }>;
        replies.set(r.id, r);
      }
      expect(replies.get(11)?.error?.message).toContain("refused: invalid \"req\" frame");
      expect(replies.get(12)?.error?.message).toContain("refused: invalid \"req\" frame");
      expect(replies.get(13)?.error).toBeUndefined();
      expect(h.got.filter((f) => f.t === "ready" || f.t === "fatal")).toEqual([]); // the second init did nothing
    }, 30_000);
  });
}
