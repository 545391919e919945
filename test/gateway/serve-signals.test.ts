// Issue 13, items 7 and 8 end to end: `moe serve` on the tiny fixture listens before its model is
// ready, then on SIGTERM mid-stream reports draining, refuses new work with 503 + Retry-After, lets
// the stream finish, cuts a request that outlives --drain-timeout, and exits 0.
import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";

const root = join(import.meta.dir, "../..");
const TINY = join(root, "test/fixtures/tiny-dsv3");

let proc: ReturnType<typeof Bun.spawn> | null = null;
afterAll(() => {
  if (proc && proc.exitCode === null) proc.kill("SIGKILL");
});

/** The first stderr line matching `re`, reading the child's stderr as it comes. */
async function waitForLine(stream: ReadableStream<Uint8Array>, re: RegExp, log: string[]): Promise<RegExpMatchArray> {
  const reader = stream.getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const r = await reader.read();
    if (r.done) throw new Error(`serve ended before printing ${re}:\n${log.join("")}`);
    const chunk = dec.decode(r.value, { stream: true });
    log.push(chunk);
    buf += chunk;
    const m = buf.match(re);
    if (m) {
      void (async () => { // keep draining stderr so the child never blocks on it
        for (let x = await reader.read(); !x.done; x = await reader.read()) log.push(dec.decode(x.value));
      })();
      return m;
    }
  }
}

async function health(base: string): Promise<{ status: number; body: any }> {
  const r = await fetch(`${base}/health`);
  return { status: r.status, body: await r.json() };
}

test("SIGTERM mid-stream: draining 503s, the stream finishes, a stalled request is cut, exit 0", async () => {
  const log: string[] = [];
  proc = Bun.spawn([process.execPath, join(root, "src/cli.ts"), "serve", "--model", TINY, "--port", "0", "--drain-timeout", "2"],
    { cwd: root, stdout: "ignore", stderr: "pipe", env: { ...process.env, MOE_API_KEY: undefined } });
  const [, base] = await waitForLine(proc.stderr as ReadableStream<Uint8Array>, /listening on (http:\/\/[^/\s]+)\/v1/, log);
  expect((await fetch(`${base}/health/live`)).status).toBe(200); // alive while the model loads
  for (let deadline = Date.now() + 60_000; (await health(base!)).status !== 200;) {
    if (Date.now() > deadline) throw new Error(`never ready:\n${log.join("")}`);
    await Bun.sleep(20);
  }

  // a request whose body never ends keeps the drain waiting until --drain-timeout
  const url = new URL(base!);
  const stalled: string[] = [];
  const sock = await Bun.connect({ hostname: url.hostname, port: Number(url.port), socket: { data(_s, d) { stalled.push(d.toString()); } } });
  sock.write("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"prompt\":");
  for (let deadline = Date.now() + 10_000; (await health(base!)).body.in_flight !== 1;) {
    if (Date.now() > deadline) throw new Error("the stalled request never arrived");
    await Bun.sleep(5);
  }

  const res = await fetch(`${base}/v1/completions`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ prompt: "hi", max_tokens: 200, ignore_eos: true, stream: true }),
  });
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  const first = await reader.read(); // streaming has begun
  expect(first.done).toBe(false);
  proc.kill("SIGTERM");

  for (let deadline = Date.now() + 10_000; (await health(base!)).status !== 503;) {
    if (Date.now() > deadline) throw new Error("never reported draining");
    await Bun.sleep(5);
  }
  expect((await health(base!)).body.status).toBe("draining");
  const refused = await fetch(`${base}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt: "hi" }) });
  expect(refused.status).toBe(503);
  expect(refused.headers.get("retry-after")).not.toBeNull();
  expect(((await refused.json()) as any).error.code).toBe("shutting_down");

  let text = new TextDecoder().decode(first.value);
  for (let r = await reader.read(); !r.done; r = await reader.read()) text += new TextDecoder().decode(r.value);
  const datas = text.split("\n\n").filter((b) => b.startsWith("data: ")).map((b) => b.slice(6));
  expect(datas.at(-1)).toBe("[DONE]");
  const last = JSON.parse(datas.at(-2)!);
  if (last.choices?.[0]?.finish_reason !== "length") throw new Error(`the stream did not finish: ${datas.at(-2)}\n${log.join("")}`);

  expect(await proc.exited).toBe(0);
  expect(stalled.join("")).toContain("503"); // cut at the drain timeout, with an answer
  expect(log.join("")).toContain("ended 1 request");
}, 120_000);

test("an empty MOE_API_KEY stops serve at startup instead of turning auth off", async () => {
  const p = Bun.spawn([process.execPath, join(root, "src/cli.ts"), "serve", "--model", TINY, "--port", "0"],
    { cwd: root, stdout: "ignore", stderr: "pipe", env: { ...process.env, MOE_API_KEY: "" } });
  expect(await p.exited).toBe(2);
  expect(await new Response(p.stderr as ReadableStream).text()).toContain("MOE_API_KEY is set but holds no key");
}, 60_000);
