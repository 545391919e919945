// Issue 18, logs end to end: `moe serve --log-format json` on the tiny fixture writes one JSON object
// per stderr line: its start-up and the runtime's events, a line per request (200, 400, a stream cut
// off by its client) and the preemptions a 64-token KV cache forces on two long requests, which
// /metrics counts as well. test/gateway/logs.test.ts checks the same fields in-process.
import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";

const root = join(import.meta.dir, "../..");
const TINY = join(root, "test/fixtures/tiny-dsv3");

let proc: ReturnType<typeof Bun.spawn> | null = null;
afterAll(() => {
  if (proc && proc.exitCode === null) proc.kill("SIGKILL");
});

/** Collects the child's stderr lines as they come (so it never blocks on a full pipe). */
function collect(stream: ReadableStream<Uint8Array>): { lines: string[]; done: Promise<void> } {
  const lines: string[] = [];
  const done = (async () => {
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of stream) {
      buf += dec.decode(chunk, { stream: true });
      const parts = buf.split("\n");
      buf = parts.pop()!;
      lines.push(...parts);
    }
    if (buf) lines.push(buf);
  })();
  return { lines, done };
}

async function until<T>(what: string, f: () => T | undefined | Promise<T | undefined>, lines: string[], ms = 60_000): Promise<T> {
  for (const deadline = Date.now() + ms; ;) {
    const v = await f();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() > deadline || proc?.exitCode !== null) throw new Error(`${what}: not within ${ms} ms; serve said:\n${lines.join("\n")}`);
    await Bun.sleep(20);
  }
}

const parsed = (lines: string[]) => lines.map((l) => JSON.parse(l));
const requestLine = (lines: string[], id: string) => parsed(lines).find((o) => o.event === "request" && o.request_id === id);

test("serve --log-format json: every stderr line is a JSON object; requests, preemptions and runtime events", async () => {
  proc = Bun.spawn([process.execPath, join(root, "src/cli.ts"), "serve", "--model", TINY, "--port", "0", "--log-format", "json",
    "--kv-cache-tokens", "64", "--max-model-len", "64", "--served-model-name", "tiny"],
    { cwd: root, stdout: "ignore", stderr: "pipe", env: { ...process.env, MOE_API_KEY: undefined } });
  const { lines, done } = collect(proc.stderr as ReadableStream<Uint8Array>);
  const listening = await until("the listening line", () => parsed(lines).find((o) => o.event === "listening"), lines);
  const base = (listening.url as string).replace(/\/v1$/, "");
  await until("ready", async () => (await fetch(`${base}/health`)).status === 200, lines);

  const post = (id: string, body: object) => fetch(`${base}/v1/completions`, {
    method: "POST", headers: { "content-type": "application/json", "x-request-id": id }, body: JSON.stringify(body),
  });
  expect((await post("e2e-ok", { prompt: "hello", max_tokens: 4 })).status).toBe(200);
  expect((await post("e2e-bad", { prompt: "hello", max_tokens: -4 })).status).toBe(400);

  // two sequences of 3 + 55 tokens cannot both fit 4 pages of 16: the later one is preempted, then finishes
  const long = { prompt: [5, 6, 7], max_tokens: 55, ignore_eos: true, temperature: 0 };
  const both = await Promise.all([post("e2e-a", long), post("e2e-b", long)]);
  for (const r of both) expect(((await r.json()) as any).usage.completion_tokens).toBe(55);

  const cut = await post("e2e-cut", { ...long, stream: true });
  const reader = cut.body!.getReader();
  for (let i = 0; i < 3; i++) await reader.read();
  await reader.cancel();

  const ok = await until("the 200's line", () => requestLine(lines, "e2e-ok"), lines);
  expect(ok).toMatchObject({ level: "info", msg: "request", method: "POST", path: "/v1/completions", status: 200, completion_tokens: 4, finish_reason: "length" });
  expect(ok.prompt_tokens).toBeGreaterThan(0);
  expect(ok.client).toBe("127.0.0.1");
  expect(ok.ttft_ms).toBeGreaterThan(0);
  expect(ok.total_ms).toBeGreaterThanOrEqual(ok.ttft_ms);
  expect(requestLine(lines, "e2e-bad")).toMatchObject({ status: 400, prompt_tokens: null });
  const aborted = await until("the cut stream's line", () => requestLine(lines, "e2e-cut"), lines);
  expect(aborted).toMatchObject({ status: 200, finish_reason: "abort", stream: true });

  const preempted = parsed(lines).filter((o) => o.event === "preempted");
  expect(preempted.length).toBeGreaterThan(0);
  expect(preempted[0]).toMatchObject({ level: "info", component: "engine", replica: 0 });
  expect(preempted[0].request_id).toStartWith("e2e-b-"); // engine ids are the request id, suffixed
  const metrics = await (await fetch(`${base}/metrics`)).text();
  expect(metrics).toContain(`moe_num_preemptions_total{model_name="tiny"} ${preempted.length}`);

  const runtime = parsed(lines).filter((o) => o.component === "runtime");
  expect(runtime.map((o) => o.event)).toContain("host_up");
  expect(runtime.filter((o) => o.event === "activated").map((o) => o.actor.split("#")[0]).sort()).toEqual(["attention/0", "expert/0", "router/0"]);
  expect(parsed(lines).some((o) => o.event === "serving" && o.model_name === "tiny")).toBe(true);

  proc.kill("SIGTERM");
  expect(await proc.exited).toBe(0);
  await done;
  expect(parsed(lines).find((o) => o.event === "draining")).toMatchObject({ signal: "SIGTERM" });
  for (const l of lines) {
    const o = JSON.parse(l); // every line, to the last, one JSON object
    expect(typeof o.ts).toBe("string");
    expect(["debug", "info", "warn", "error"]).toContain(o.level);
    expect(typeof o.msg).toBe("string");
  }
}, 120_000);
