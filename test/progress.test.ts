// Long work shows progress on stderr, never on stdout: a bar redrawn in place on a terminal, a few
// plain lines otherwise (issue 18). The streams here are fakes, so the test does not depend on
// where its own output goes.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openCheckpoint } from "../src/checkpoint/checkpoint.ts";
import { progress, progressMode } from "../src/progress.ts";

const root = new URL("..", import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), "moe-progress-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function sink(isTTY: boolean) {
  const chunks: string[] = [];
  return { isTTY, chunks, write: (s: string) => void chunks.push(s), text: () => chunks.join("") };
}

function cli(args: string[], env: Record<string, string> = {}) {
  const p = Bun.spawnSync([process.execPath, `${root}src/cli.ts`, ...args], { cwd: root, stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

describe("progress", () => {
  test("the mode follows the stream: a bar on a terminal, lines elsewhere; MOE_PROGRESS overrides", () => {
    const saved = process.env.MOE_PROGRESS;
    delete process.env.MOE_PROGRESS;
    try {
      expect(progressMode({ isTTY: true })).toBe("bar");
      expect(progressMode({ isTTY: false })).toBe("lines");
      process.env.MOE_PROGRESS = "off";
      expect(progressMode({ isTTY: true })).toBe("off");
    } finally {
      if (saved === undefined) delete process.env.MOE_PROGRESS;
      else process.env.MOE_PROGRESS = saved;
    }
  });

  test("lines: at most one per tenth of the work, whatever the number of steps, then the final line", () => {
    const s = sink(false);
    const p = progress("work", 10_000, { stream: s, mode: "lines", quietMs: 0 });
    for (let i = 0; i < 10_000; i++) p.add(1);
    p.end("all done");
    const lines = s.text().trimEnd().split("\n");
    expect(lines.length).toBeLessThanOrEqual(10);
    expect(lines.length).toBeGreaterThan(1);
    expect(lines.at(-1)).toMatch(/^work: all done in \d+\.\d s$/);
    for (const l of lines.slice(0, -1)) expect(l).toMatch(/^work: \d+% \(\d+\/10000, \d+\.\d s\)$/);
  });

  test("lines: quick work prints only its final line; end() is idempotent", () => {
    const s = sink(false);
    const p = progress("quick", 4, { stream: s, mode: "lines" }); // quietMs: 1 s by default
    for (let i = 0; i < 4; i++) p.add(1);
    p.end();
    p.end();
    expect(s.text()).toMatch(/^quick: 4\/4 in \d+\.\d s\n$/);
    expect(p.ended).toBe(true);
  });

  test("bar: redrawn in place with carriage returns, ended by one newline", () => {
    const s = sink(true);
    const p = progress("load", 2 ** 30, { stream: s, mode: "bar", unit: "bytes" });
    p.set(2 ** 29);
    p.end();
    const t = s.text();
    expect(t.startsWith("\rload [")).toBe(true);
    expect(t).toContain(" 50% 512.0 MiB/1.00 GiB");
    expect(t.endsWith("\n")).toBe(true);
    expect(t.match(/\n/g)!.length).toBe(1);
  });

  test("loading a checkpoint reports the bytes read, and ends by itself once reads stop", async () => {
    const dir = join(tmp, "bench-s");
    expect(cli(["make-model", "--preset", "bench-s", "--out", dir, "--quiet"]).code).toBe(0);
    const s = sink(false);
    const ck = openCheckpoint(dir, { progress: { stream: s, mode: "lines", minBytes: 0, quietMs: 0, idleEndMs: 50 } });
    for (const name of ck.names()) {
      const i = ck.info(name);
      ck.raw(name, [i.dtype], i.shape);
    }
    const deadline = Date.now() + 10_000;
    while (!s.text().includes(" in ") && Date.now() < deadline) await Bun.sleep(20);
    const lines = s.text().trimEnd().split("\n");
    expect(lines.at(-1)).toMatch(/^loading bench-s: [\d.]+ MiB\/[\d.]+ MiB in \d+\.\d s$/);
    expect(lines.length).toBeLessThanOrEqual(10);
    // Below the size threshold (1 GiB by default) a checkpoint loads quietly.
    const q = sink(false);
    const small = openCheckpoint(dir, { progress: { stream: q, mode: "lines", quietMs: 0, idleEndMs: 50 } });
    // (the embedding is 16% of bench-s: with quietMs 0 a started progress would print at once)
    small.raw("model.embed_tokens.weight", ["BF16"], small.info("model.embed_tokens.weight").shape);
    expect(q.text()).toBe("");
  }, 60_000);
});

describe("commands show progress on stderr and keep stdout for results", () => {
  test("make-model: progress and summary on stderr, nothing on stdout", () => {
    const r = cli(["make-model", "--preset", "bench-s", "--out", join(tmp, "mm"), "--layers", "1"], { MOE_PROGRESS: "lines" });
    expect(r.code, r.err).toBe(0);
    expect(r.out).toBe("");
    expect(r.err).toMatch(/make-model bench-s fp8: seed 0 -> .*M params, vocab_size \d+, \d+ tensors.* in \d+\.\d s/);
  }, 60_000);

  test("perplexity: the result on stdout (JSON alone), progress on stderr; --text is tokenized with the model's tokenizer", async () => {
    const text = join(tmp, "fortunes.txt");
    writeFileSync(text, "You will have a long and happy life. ".repeat(60));
    const r = cli(["perplexity", "--text", text, "--context", "64", "--json"], { MOE_PROGRESS: "lines" });
    expect(r.code, r.err).toBe(0);
    const out = JSON.parse(r.out) as { loss: number; perplexity: number; tokens: number; windows: number };
    expect(out.windows).toBeGreaterThan(0);
    expect(out.tokens).toBe(64 * out.windows);
    expect(out.perplexity).toBeGreaterThan(1);
    expect(r.err).toMatch(/^perplexity: \d+ windows of 64, perplexity [\d.]+ in \d+\.\d s$/m);
    // The same text as token ids gives the same figures.
    const { loadTokenizer } = await import("../src/tokenizer/index.ts");
    const tok = await loadTokenizer(`${root}models/fortune-dsv3`);
    const ids = join(tmp, "fortunes.json");
    writeFileSync(ids, JSON.stringify(tok.encode(await Bun.file(text).text(), { addSpecialTokens: true })));
    const r2 = cli(["perplexity", "--tokens", ids, "--context", "64", "--json"], { MOE_PROGRESS: "off" });
    expect(r2.code, r2.err).toBe(0);
    expect(JSON.parse(r2.out)).toEqual(out);
    expect(r2.err).toBe("");
  }, 120_000);
});
