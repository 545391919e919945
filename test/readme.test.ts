// Every command line in the README's ```sh blocks runs, as written, and exits 0 (issue 18): with a
// PATH that holds no bun (npx must find node_modules/.bin/bun, as on a fresh machine), in order,
// block by block, each line in bash with the exports of the lines before it.
//
// What is substituted, and why (everything else runs exactly as written):
// - `npm install` is dropped: this checkout is installed already, and installing from a test would
//   rewrite node_modules under the other tests running beside it.
// - `npm test` runs one test file (`npm test -- test/help.test.ts`): the whole suite from inside one
//   of its tests would run this test again. One file still shows the script builds the kernels and
//   finds bun.
// - Servers listen on port 0 (`npm start -- --port 0`, `--port 8000` -> `--port 0`, `--port 0` added
//   to a `moe serve` without one), and `:8000` in later lines becomes the port they got: tests run
//   side by side. A serving line runs until /health answers 200, then gets SIGTERM (as a process
//   manager stops it) and must exit 0; so must the `&` lines (workers) at the end of their block.
// - Model directories the README only names as examples (/data/DeepSeek-V3) become the tiny fixture
//   checkpoint, and /tmp/ becomes this test's temporary directory (make-model writes its small
//   preset there and later lines read it back).
// - `scripts/nats-server.sh 4222` gets a free port, with TMPDIR pointing at this test's directory so
//   the server's pid file lands there and the server is stopped afterwards.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { freePort, natsUnavailable } from "./nats/cluster.ts";

const root = new URL("..", import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), "moe-readme-"));
const tiny = `${root}test/fixtures/tiny-dsv3`;
const running: { line: string; proc: Bun.Subprocess<"ignore", "pipe", "pipe">; err: () => string }[] = [];
afterAll(() => {
  for (const r of running) r.proc.kill("SIGKILL");
  rmSync(tmp, { recursive: true, force: true });
});

/** The README's ```sh blocks: lines joined across trailing backslashes, comments and blanks dropped. */
export function readmeBlocks(text: string): string[][] {
  const blocks: string[][] = [];
  for (const m of text.matchAll(/^```(?:sh|bash|shell)\n([\s\S]*?)^```/gm)) {
    const lines = m[1]!.replace(/\\\n\s*/g, " ").split("\n");
    blocks.push(lines.map(stripComment).map((l) => l.trim()).filter((l) => l !== ""));
  }
  return blocks;
}

/** A trailing `# comment` (a # after whitespace, outside quotes). */
function stripComment(line: string): string {
  let quote = "";
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) { if (c === quote) quote = ""; continue; }
    if (c === "'" || c === '"') quote = c;
    else if (c === "#" && (i === 0 || /\s/.test(line[i - 1]!))) return line.slice(0, i);
  }
  return line;
}

/** PATH without any directory that holds a bun (a global install would hide the problem). */
const pathWithoutBun = (process.env.PATH ?? "").split(delimiter).filter((d) => d && !existsSync(join(d, "bun"))).join(delimiter);

const isServer = (l: string) => /(^|\s)npm start\b/.test(l) || /\bmoe serve\b/.test(l);

/** The substitutions the header lists. `port` is the last server's, for lines that talk to it. */
export function substitute(line: string, o: { port?: number; natsPort: number }): string | null {
  let l = line.replace(/^npm install && /, "");
  if (/^npm install\b/.test(l)) return null;
  l = l.replace(/^npm test$/, "npm test -- test/help.test.ts");
  l = l.replace(/^npm start\b/, "npm start -- --port 0");
  if (/\bmoe serve\b/.test(l)) l = /--port\s+\d+/.test(l) ? l.replace(/--port\s+\d+/, "--port 0") : l.replace(/\s*&$/, "") + " --port 0" + (/&$/.test(l) ? " &" : "");
  // /tmp/ first: the checkout itself may live under /tmp (a CI clone), and its fixture path must stay whole
  l = l.replace(/(^|[\s="'])\/tmp\//g, `$1${tmp}/`).replace(/\/data\/DeepSeek-V3\b/g, tiny);
  l = l.replace(/scripts\/nats-server\.sh 4222/, `scripts/nats-server.sh ${o.natsPort}`).replace(/:4222\b/g, `:${o.natsPort}`);
  if (o.port !== undefined) l = l.replace(/(127\.0\.0\.1|localhost):8000\b/g, `127.0.0.1:${o.port}`);
  return l;
}

/** The first bun process under `pid` (npx and npm run put a node and a shell in between). */
function bunUnder(pid: number): number | null {
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift()!;
    try {
      if (p !== pid && /(^|\/)bun$/.test(readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0")[0]!)) return p;
      for (const t of readFileSync(`/proc/${p}/task/${p}/children`, "utf8").trim().split(/\s+/).filter(Boolean)) queue.push(Number(t));
    } catch {
      // the process ended meanwhile
    }
  }
  return null;
}

async function until(cond: () => boolean | Promise<boolean>, what: string, ms: number, err: () => string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${err().slice(-3000)}`);
    await Bun.sleep(100);
  }
}

class Shell {
  readonly envFile = join(tmp, `env-${Math.random().toString(36).slice(2)}`);
  readonly env: Record<string, string> = { ...process.env, PATH: pathWithoutBun, TMPDIR: tmp, MOE_PROGRESS: "lines" } as Record<string, string>;
  port?: number;
  constructor() {
    writeFileSync(this.envFile, "");
  }

  /** A line that ends: run it, keep what it exported, expect exit 0. */
  run(line: string): void {
    const script = `set -eo pipefail\nsource ${this.envFile}\n${line}\nexport -p > ${this.envFile}.next`;
    const r = Bun.spawnSync(["bash", "-c", script], { cwd: root, env: this.env, stdout: "pipe", stderr: "pipe" });
    expect(r.exitCode, `${line}\nstdout: ${r.stdout.toString().slice(-2000)}\nstderr: ${r.stderr.toString().slice(-3000)}`).toBe(0);
    writeFileSync(this.envFile, readFileSync(`${this.envFile}.next`));
  }

  /** A line that keeps running (`&`, or a server): start it; a server is waited for until healthy. */
  async start(line: string): Promise<void> {
    const cmd = line.replace(/\s*&$/, "");
    const proc = Bun.spawn(["bash", "-c", `source ${this.envFile}\nexec ${cmd}`], { cwd: root, env: this.env, stdout: "pipe", stderr: "pipe" });
    let err = "";
    void (async () => { for await (const c of proc.stderr) err += new TextDecoder().decode(c); })();
    void (async () => { for await (const _ of proc.stdout); })();
    const entry = { line, proc, err: () => err };
    running.push(entry);
    if (!isServer(line)) return;
    await until(() => /listening on http:\/\/[\d.]+:(\d+)/.test(err) || proc.exitCode !== null, `${line} to listen`, 300_000, () => err);
    expect(proc.exitCode, `${line} exited early:\n${err.slice(-3000)}`).toBeNull();
    this.port = Number(/listening on http:\/\/[\d.]+:(\d+)/.exec(err)![1]);
    const healthy = async () => (await fetch(`http://127.0.0.1:${this.port}/health`).catch(() => null))?.status === 200;
    await until(healthy, `${line}: /health 200`, 300_000, () => err);
  }

  /** Ends what was started, servers first, with SIGTERM to the bun process itself; each exits 0. */
  async stopAll(): Promise<void> {
    const order = [...running].sort((a, b) => Number(isServer(b.line)) - Number(isServer(a.line)));
    for (const r of order) {
      const pid = bunUnder(r.proc.pid);
      if (pid !== null) process.kill(pid, "SIGTERM");
      else r.proc.kill("SIGTERM");
      const code = await Promise.race([r.proc.exited, Bun.sleep(120_000).then(() => "hung" as const)]);
      expect(code, `${r.line}\n${r.err().slice(-3000)}`).toBe(0);
      running.splice(running.indexOf(r), 1);
    }
  }
}

const blocks = readmeBlocks(readFileSync(`${root}README.md`, "utf8"));
const natsMissing = blocks.flat().some((l) => l.includes("nats-server.sh")) ? natsUnavailable() : null;

describe("README", () => {
  test("has command blocks, and every line of them is a command this test knows how to run", () => {
    expect(blocks.length).toBeGreaterThanOrEqual(3);
    for (const l of blocks.flat()) expect(l, "a README command line should not call a global bun").not.toMatch(/(^|[;&|(]\s*)bun\s/);
  });

  blocks.forEach((lines, i) => {
    const nats = lines.some((l) => l.includes("nats-server.sh"));
    test.skipIf(nats && !!natsMissing)(`block ${i + 1}: ${lines[0]}${lines.length > 1 ? ` (+${lines.length - 1})` : ""}`, async () => {
      const sh = new Shell();
      const natsPort = freePort();
      try {
        for (const raw of lines) {
          const line = substitute(raw, { port: sh.port, natsPort });
          if (line === null) continue;
          if (/&$/.test(line) || isServer(line)) await sh.start(line);
          else sh.run(line);
        }
        await sh.stopAll();
      } finally {
        const pidFile = join(tmp, `moe-nats-${natsPort}.pid`);
        if (existsSync(pidFile) && statSync(pidFile).size > 0) {
          try {
            process.kill(Number(readFileSync(pidFile, "utf8").trim()), "SIGTERM");
          } catch {
            // already gone
          }
        }
      }
    }, 900_000);
  });
});
