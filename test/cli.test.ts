// The CLI as a user runs it: logits, generate and perplexity against the goldens.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Golden } from "./helpers/golden.ts";
import { expectClose } from "./golden/suite.ts";

const root = new URL("..", import.meta.url).pathname;
const tiny = `${root}test/fixtures/tiny-dsv3`;

/** A loopback port nothing listens on (bound, then released). */
function freePort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const p = Bun.spawn([process.execPath, `${root}src/cli.ts`, ...args], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
}

describe("cli", () => {
  const g = new Golden(tiny);

  test("logits: prefill row then one row per decode token", async () => {
    const prompt = g.ids("decode.prompt"), fed = g.ids("decode.fed_tokens").slice(0, 3);
    // The goldens are fp32 reference outputs: the checks against them keep an f32 KV cache.
    const r = await cli("logits", "--model", tiny, "--ids", prompt.join(","), "--decode", fed.join(","), "--kv-cache-dtype", "f32");
    expect(r.code).toBe(0);
    const { logits } = JSON.parse(r.out) as { logits: number[][] };
    expect(logits.length).toBe(4);
    expectClose(logits[0], g.f32("decode.prefill_logits"), "prefill row");
    const V = logits[0].length, steps = g.f32("decode.step_logits");
    for (let j = 0; j < 3; j++) expectClose(logits[j + 1], steps.subarray(j * V, (j + 1) * V), `decode row ${j}`);
  });

  test("logits --mtp adds one MTP row per prompt position but the last", async () => {
    const tokens = g.ids("mtp.tokens");
    const r = await cli("logits", "--model", tiny, "--ids", tokens.join(","), "--mtp", "--kv-cache-dtype", "f32");
    expect(r.code).toBe(0);
    const { mtp_logits } = JSON.parse(r.out) as { mtp_logits: number[][] };
    expect(mtp_logits.length).toBe(tokens.length - 1);
    expectClose(mtp_logits.flat(), g.f32("mtp.logits"), "mtp rows");
  });

  test("generate --json: greedy ids equal the golden continuation", async () => {
    const want = (g.json.batch.completions_if_eos_id_were_1 as number[][])[1];
    const r = await cli("generate", "--model", tiny, "--ids", g.ids("batch.prompt1").join(","), "--max-tokens", String(want.length), "--json", "--kv-cache-dtype", "f32");
    expect(r.code).toBe(0);
    const out = JSON.parse(r.out) as { ids: number[]; text: string };
    expect(out.ids).toEqual(want);
    expect(typeof out.text).toBe("string");
  });

  test("generate stops at the end-of-sequence token and at max-tokens", async () => {
    const r = await cli("generate", "--chat", "Tell me a fortune", "--max-tokens", "200", "--json");
    expect(r.code).toBe(0);
    const out = JSON.parse(r.out) as { ids: number[] };
    expect(out.ids.length).toBeLessThanOrEqual(200);
    expect(out.ids).not.toContain(1);
    const short = JSON.parse((await cli("generate", "--prompt", "The", "--max-tokens", "3", "--json", "--temperature", "0.8", "--seed", "7")).out);
    expect(short.ids.length).toBeLessThanOrEqual(3);
  });

  test("sampling with a seed is reproducible", async () => {
    const args = ["generate", "--prompt", "Love is", "--max-tokens", "12", "--temperature", "0.9", "--top-p", "0.9", "--top-k", "50", "--seed", "42", "--json"];
    const [a, b] = await Promise.all([cli(...args), cli(...args)]);
    expect(JSON.parse(a.out).ids).toEqual(JSON.parse(b.out).ids);
  });

  test("perplexity on the first 32 windows matches the reference within 0.1%", async () => {
    const r = await cli("perplexity", "--tokens", `${root}test/fixtures/fortune-dsv3/eval/val.json`, "--windows", "32", "--json", "--kv-cache-dtype", "f32");
    expect(r.code).toBe(0);
    const out = JSON.parse(r.out) as { loss: number; perplexity: number; tokens: number };
    expect(out.tokens).toBe(8192);
    expect(Math.abs(out.perplexity / 70.28902892665894 - 1)).toBeLessThan(0.001);
  }, 300_000);

  test("bad input gets a clear error and a non-zero exit", async () => {
    const r1 = await cli("logits", "--model", tiny, "--ids", "1,99999");
    expect(r1.code).not.toBe(0);
    expect(r1.err).toMatch(/outside the vocabulary/);
    const r2 = await cli("generate", "--model", tiny);
    expect(r2.code).toBe(2);
    expect(r2.err).toMatch(/exactly one of --ids, --prompt, --chat/);
    const r3 = await cli("frobnicate");
    expect(r3.code).toBe(2);
  });

  test("a slow reader on a pipe gets the whole output (issue 13 item 9)", async () => {
    // Bun.spawn drains its pipes eagerly, so the slow reader is a shell on a named pipe: it opens
    // the pipe, then reads nothing until the CLI has exited (gone or a zombie) or ~3 s have
    // passed. A CLI that exits with output still queued behind the 64 KiB pipe buffer loses it.
    const dir = mkdtempSync(join(tmpdir(), "moe-cli-pipe-"));
    const script = `
      mkfifo "$D/out"
      "$BUN" "$CLI" logits --ids 3,14,15 --decode 9,2,6 > "$D/out" & w=$!
      exec 3< "$D/out"
      for i in $(seq 60); do grep -qs '^State:.*[SRD]' /proc/$w/status || break; sleep 0.05; done
      wc -c <&3
      wait $w; echo "rc=$?"`;
    try {
      const p = Bun.spawn(["bash", "-c", script], {
        env: { ...process.env, D: dir, BUN: process.execPath, CLI: `${root}src/cli.ts` }, stdout: "pipe", stderr: "pipe",
      });
      const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      const [bytes, rc] = out.trim().split(/\s+/);
      expect(rc, err).toBe("rc=0");
      const full = await cli("logits", "--ids", "3,14,15", "--decode", "9,2,6");
      expect(full.out.length).toBeGreaterThan(4 * 65536);
      expect(Number(bytes)).toBe(Buffer.byteLength(full.out));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  test("serve refuses a --max-model-len the KV cache cannot hold (was silently clamped to it), before listening", async () => {
    const r = await cli("serve", "--port", "0", "--max-model-len", "99999", "--kv-cache-tokens", "512");
    expect(r.code).toBe(2);
    expect(r.err).toContain("--max-model-len 99999 is larger than the 512 tokens the KV cache can hold");
    expect(r.err).toContain("usage: moe serve");
    expect(r.err).not.toContain("listening");
  }, 60_000);

  // Nothing listens at the URL: each says what it waits for, then gives up with an error.
  test("worker and serve --nats with no NATS server say what they wait for and give up after --nats-wait", async () => {
    const url = `nats://127.0.0.1:${freePort()}`, scaling = `${root}configs/scaling/nats-2-expert-nodes.yaml`;
    const [w, s] = await Promise.all([
      cli("worker", "--model", `${root}models/fortune-dsv3`, "--scaling", scaling, "--node", "experts-a", "--nats", url, "--nats-wait", "3"),
      cli("serve", "--scaling", scaling, "--port", "0", "--nats", url, "--nats-wait", "3"),
    ]);
    for (const r of [w, s]) {
      expect(r.code).toBe(1);
      expect(r.err).toContain(`waiting up to 3 s (--nats-wait) for the NATS server at ${url}`);
      expect(r.err).toContain(`no NATS server answered at ${url} within 3 s`);
    }
  }, 60_000);
});
