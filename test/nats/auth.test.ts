// A closed bus, NATS side (issue 13 item 3): a real nats-server with authentication. Clients
// without valid credentials are refused (so they cannot reach the actors), nodes never import a
// registry named by a frame and refuse malformed frames, credentials work from the URL (user and
// password, token) and from an NKey seed file, secrets never reach the output, and `moe worker`
// with bad credentials exits non-zero quickly, naming the auth failure. Skipped, with a message,
// where nats-server is missing and cannot be installed.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type NatsConnection, connect, nkeys } from "@nats-io/transport-node";
import { decode, encode } from "../../src/runtime/codec.ts";
import type { HostInit } from "../../src/runtime/frames.ts";
import { ActorSystem } from "../../src/runtime/index.ts";
import { NatsAuthError, maskUrl, natsAuthOf, natsConnect } from "../../src/runtime/nats-connect.ts";
import { type NodeServer, serveNode } from "../../src/runtime/nats-node.ts";
import { NatsTransport } from "../../src/runtime/nats-transport.ts";
import { subjects } from "../../src/runtime/nats-wire.ts";
import { MODEL, NatsServer, freePort, root } from "./cluster.ts";

const skip = process.env.MOE_SKIP_NATS ? "MOE_SKIP_NATS is set" : (await import("./cluster.ts")).natsUnavailable();
if (skip) console.warn(`[nats auth tests] SKIPPED: ${skip}`);

const KINDS = `${root}test/runtime/kinds.ts`;
const dir = mkdtempSync(join(tmpdir(), "moe-nats-auth-"));
const marker = join(dir, "imported");
const EVIL = `data:text/javascript,${encodeURIComponent(
  `import { writeFileSync } from "node:fs"; writeFileSync(${JSON.stringify(marker)}, "pwned"); export const registry = [];`,
)}`;

/** Polls `cond` until it holds or the deadline passes: waits for an event, never for a time. */
async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}

/** `moe worker` for experts-a of the two-expert-node config, reaching NATS at `url`. */
function worker(url: string, ...extra: string[]) {
  return Bun.spawn(
    [process.execPath, `${root}src/cli.ts`, "worker", "--model", MODEL, "--scaling", `${root}configs/scaling/nats-2-expert-nodes.yaml`, "--node", "experts-a", "--nats", url, ...extra],
    { stdout: "ignore", stderr: "pipe" },
  );
}

/** The exit code, or "hung" if the process is still running after `ms` (then killed). */
async function exitWithin(p: ReturnType<typeof worker>, ms: number): Promise<number | "hung"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const r = await Promise.race([p.exited, new Promise<"hung">((res) => (timer = setTimeout(() => res("hung"), ms)))]);
  clearTimeout(timer);
  if (r === "hung") p.kill("SIGKILL");
  return r;
}

/** A nats-server with its own arguments (token or config-file auth). */
async function server(args: string[]): Promise<{ port: number; stop(): Promise<void> }> {
  const port = freePort();
  const proc = Bun.spawn(["nats-server", "-a", "127.0.0.1", "-p", String(port), ...args], { stdio: ["ignore", "ignore", "ignore"] });
  await until(() => {
    try {
      return Bun.spawnSync(["bash", "-c", `exec 3<>/dev/tcp/127.0.0.1/${port}`]).exitCode === 0;
    } catch {
      return false;
    }
  }, "nats-server to listen");
  return { port, stop: async () => void (proc.kill("SIGKILL"), await proc.exited) };
}

describe("NATS credentials in URLs", () => {
  test("user:password and token are taken out of the URL; a logged URL shows neither", () => {
    expect(natsAuthOf("nats://moe:s%40cret@127.0.0.1:4222,nats://moe:s%40cret@10.0.0.2:4222")).toEqual({
      servers: ["nats://127.0.0.1:4222", "nats://10.0.0.2:4222"], user: "moe", pass: "s@cret",
    });
    expect(natsAuthOf("nats://T0KEN@h:1")).toEqual({ servers: ["nats://h:1"], token: "T0KEN" });
    expect(natsAuthOf("127.0.0.1:4222")).toEqual({ servers: ["127.0.0.1:4222"] });
    expect(() => natsAuthOf("nats://a:b@h:1,nats://c:d@h:2")).toThrow("different credentials");
    expect(maskUrl("nats://moe:s3cret@h:1,nats://T0KEN@h:2,h:3")).toBe("nats://moe:***@h:1,nats://***@h:2,h:3");
  });

  test("an unreachable server is given up on after a bounded wait, saying what was waited for", async () => {
    const url = `nats://moe:s3cret@127.0.0.1:${freePort()}`;
    const err = await natsConnect(url, "t", { firstConnectMs: 300 }).then(() => null, (e: Error) => e);
    expect(err?.message).toContain(`no NATS server answered at nats://moe:***@127.0.0.1:`);
    expect(err?.message).toContain("waited for the first connection");
    expect(err?.message).not.toContain("s3cret");
  });
});

describe.skipIf(!!skip)("an authenticated nats-server", () => {
  const s = new NatsServer();
  const system = `auth${process.pid}`;
  const lines: string[] = [];
  let sys: ActorSystem, insider: NatsConnection, nodeNc: NatsConnection, node: NodeServer, transport: NatsTransport;

  beforeAll(async () => {
    await s.start();
    nodeNc = await natsConnect(s.url, "node-n1");
    node = await serveNode({ nc: nodeNc, system, node: "n1", registry: { module: KINDS }, log: (l) => void lines.push(l) });
    transport = await NatsTransport.connect({ url: s.url, system });
    sys = await ActorSystem.start({
      registry: { module: KINDS }, placement: [{ kind: "echo", key: "a", location: "node:n1" }], transports: [transport], askTimeoutMs: 15_000,
    });
    insider = await natsConnect(s.url, "insider");
  }, 30_000);

  afterAll(async () => {
    await sys?.stop(500);
    await transport?.close();
    await node?.stop(0);
    await Promise.all([nodeNc?.close(), insider?.close()]);
    await s.stop();
  }, 15_000);

  test("the actors answer an authenticated system", async () => {
    expect(await sys.ask("echo/a", { type: "echo", v: 1 })).toEqual({ type: "echo", v: 1 });
  }, 20_000);

  test("a client without credentials, or with a wrong password, cannot connect (so cannot reach the actors)", async () => {
    for (const url of [s.anonUrl, `nats://moe:wrong@127.0.0.1:${s.port}`]) {
      const err = await natsConnect(url, "outsider").then(() => null, (e: Error) => e);
      expect(err).toBeInstanceOf(NatsAuthError);
      expect(err?.message).toContain("authorization violation");
      expect(err?.message).not.toContain("wrong");
    }
    // The server enforces it, not our client: the plain nats.js client is refused too.
    const raw = await connect({ servers: s.anonUrl, reconnect: false }).then(() => null, (e: Error) => e);
    expect(raw?.message).toMatch(/authorization violation/i);
  });

  test("a node never imports a registry named by an init frame: the frame is refused", async () => {
    const subj = subjects(system);
    const init: HostInit & { registry: unknown } = {
      location: "node:n1", registry: { module: EVIL, export: "registry" },
      placement: { rules: [{ kind: "echo", key: "a", location: "node:n1" }], defaultLocation: "inprocess" },
      config: {}, idleTimeoutMs: {}, askTimeoutMs: 1000,
    };
    const before = lines.length;
    insider.publish(subj.init("n1"), encode({ t: "init", init }), { reply: `_INBOX.evil${process.pid}` });
    await until(() => lines.slice(before).some((l) => l.includes("dropped an invalid init frame")), "the node to refuse the init");
    expect(lines.slice(before).join("\n")).toContain('Unrecognized key: "registry"');
    expect(existsSync(marker)).toBe(false);
    // Still the same host, still serving.
    expect(await sys.ask("echo/a", { type: "echo", v: 2 })).toEqual({ type: "echo", v: 2 });
  }, 20_000);

  test("frames on an actor's subject that are not valid requests are refused with an error; junk control frames are dropped", async () => {
    const subj = subjects(system);
    const r = decode((await insider.request(subj.actor("echo/a"), encode({ t: "req", id: 1, to: { kind: "echo" }, msg: 1 }), { timeout: 10_000 })).data) as {
      t: string; error?: { message: string };
    };
    expect(r.t).toBe("rep");
    expect(r.error?.message).toContain("refused");
    const before = lines.length;
    insider.publish(subj.ctl("n1"), encode({ t: "ctl", op: "import", to: EVIL, restarted: false }));
    await until(() => lines.slice(before).some((l) => l.includes("dropped an invalid ctl frame")), "the node to drop the ctl");
    expect(await sys.ask("echo/a", { type: "echo", v: 3 })).toEqual({ type: "echo", v: 3 });
  }, 20_000);

  test("`moe worker` with bad or no credentials exits non-zero within 10 s, naming the auth failure, secret masked", async () => {
    for (const url of [`nats://moe:not-the-secret@127.0.0.1:${s.port}`, s.anonUrl]) {
      const p = worker(url);
      const bounded = await exitWithin(p, 10_000);
      expect(bounded).not.toBe("hung");
      expect(bounded).not.toBe(0);
      const err = await new Response(p.stderr).text();
      expect(err).toContain("authorization violation");
      expect(err).toContain(url === s.anonUrl ? "(no credentials)" : "NATS at nats://moe:***@127.0.0.1:");
      expect(err).not.toContain("not-the-secret");
    }
  }, 30_000);
});

describe.skipIf(!!skip)("`moe worker` and a server it cannot use", () => {
  test("no server at the URL: it gives up after --nats-wait, saying what it waited for", async () => {
    const p = worker(`nats://moe:s3cret@127.0.0.1:${freePort()}`, "--nats-wait", "1");
    const code = await exitWithin(p, 10_000);
    expect(code).not.toBe("hung");
    expect(code).not.toBe(0);
    const err = await new Response(p.stderr).text();
    expect(err).toContain("no NATS server answered at nats://moe:***@127.0.0.1:");
    expect(err).toContain("waited for the first connection");
    expect(err).not.toContain("s3cret");
  }, 20_000);

  test("credentials revoked while it runs (the server comes back with another secret): it exits non-zero", async () => {
    const first = new NatsServer();
    await first.start();
    const p = worker(first.url);
    let err = "";
    const reading = (async () => {
      for await (const chunk of p.stderr) err += new TextDecoder().decode(chunk);
    })();
    try {
      await until(() => err.includes("connected to nats://moe:***@"), "the worker to connect", 20_000);
      await first.stop();
      const second = new NatsServer(first.port); // same port, a new secret
      await second.start();
      try {
        const code = await exitWithin(p, 15_000);
        expect(code).not.toBe("hung");
        expect(code).not.toBe(0);
        await reading;
        expect(err).toMatch(/NATS connection closed: .*authorization violation/i);
        expect(err).not.toContain(first.secret);
      } finally {
        await second.stop();
      }
    } finally {
      p.kill("SIGKILL");
    }
  }, 30_000);
});

describe.skipIf(!!skip)("other ways to authenticate", () => {
  test("a token in the URL (nats://TOKEN@host)", async () => {
    const srv = await server(["--auth", "t0ken-abc"]);
    try {
      const nc = await natsConnect(`nats://t0ken-abc@127.0.0.1:${srv.port}`, "tok");
      await nc.close();
      const err = await natsConnect(`nats://nope@127.0.0.1:${srv.port}`, "tok").then(() => null, (e: Error) => e);
      expect(err).toBeInstanceOf(NatsAuthError);
    } finally {
      await srv.stop();
    }
  });

  test("an NKey seed file (--nats-creds FILE); another key is refused", async () => {
    const user = nkeys.createUser();
    const stranger = nkeys.createUser();
    const conf = join(dir, "nkey.conf");
    writeFileSync(conf, `authorization { users: [ { nkey: ${user.getPublicKey()} } ] }\n`);
    const seed = join(dir, "user.nk"), other = join(dir, "other.nk");
    writeFileSync(seed, new TextDecoder().decode(user.getSeed()), { mode: 0o600 });
    writeFileSync(other, new TextDecoder().decode(stranger.getSeed()), { mode: 0o600 });
    const srv = await server(["-c", conf]);
    try {
      const nc = await natsConnect(`nats://127.0.0.1:${srv.port}`, "nk", { creds: seed });
      await nc.close();
      const err = await natsConnect(`nats://127.0.0.1:${srv.port}`, "nk", { creds: other }).then(() => null, (e: Error) => e);
      expect(err).toBeInstanceOf(NatsAuthError);
      expect(err?.message).toContain(`the NKey in ${other}`);
    } finally {
      await srv.stop();
    }
  });
});
