// Issue 18: scripts/loadgen.ts takes vLLM benchmark_serving's flags and datasets against an in-process
// server: random prompts whose lengths are tokens (the server's tokenizer agrees), a shared prefix,
// a ShareGPT file, the chat backend, --plot as SVG and PNG, --save-result, --help and usage errors.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Resvg } from "@resvg/resvg-js";
import { LOADGEN_OPTIONS, LOADGEN_USAGE, loadRequests, parseCli, runBenchmark } from "../../scripts/loadgen.ts";
import { serveApp } from "../../src/gateway/server.ts";
import { harness, type Harness, MODEL } from "./helpers.ts";

let h: Harness;
let server: ReturnType<typeof serveApp>;
let base: string;
const dir = mkdtempSync(join(tmpdir(), "loadgen-"));
const script = join(import.meta.dir, "../../scripts/loadgen.ts");

beforeAll(async () => {
  h = await harness({ stepMs: 1 });
  server = serveApp(h.app, { port: 0 });
  base = `http://127.0.0.1:${server.port}`;
});
afterAll(() => {
  server.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

const cli = (...args: string[]) => parseCli(["--base-url", base, "--model", MODEL, "--ignore-eos", ...args]);

/** The prompts the engine received since `from` (token ids, BOS first). */
const received = (from: number) => h.engine.requests.slice(from).map((r) => r.prompt_ids);

describe("loadgen speaks benchmark_serving", () => {
  test("--dataset-name random: input lengths are tokens, counted as the server counts them", async () => {
    const from = h.engine.requests.length;
    const r = await runBenchmark(cli("--backend", "openai", "--dataset-name", "random", "--random-input-len", "40",
      "--random-output-len", "3", "--num-prompts", "5", "--seed", "7"));
    expect(r.completed).toBe(5);
    expect(r.input_lens).toEqual([40, 40, 40, 40, 40]);
    expect(r.total_input_tokens).toBe(200);
    expect(r.total_output_tokens).toBe(15);
    for (const ids of received(from)) expect(ids.length).toBe(41); // + the BOS the server adds
    // random tokens, not words from a list: the prompts differ and are not plain English words
    expect(new Set(received(from).map((ids) => ids.join())).size).toBe(5);
  });

  test("--random-range-ratio spreads lengths; the same --seed gives the same prompts", async () => {
    const a = await loadRequests(cli("--random-input-len", "30", "--random-range-ratio", "0.5", "--num-prompts", "8", "--seed", "3"));
    const b = await loadRequests(cli("--random-input-len", "30", "--random-range-ratio", "0.5", "--num-prompts", "8", "--seed", "3"));
    expect(a).toEqual(b);
    for (const q of a) expect(q.promptLen).toBeGreaterThanOrEqual(15), expect(q.promptLen).toBeLessThanOrEqual(45);
    expect(new Set(a.map((q) => q.promptLen)).size).toBeGreaterThan(1);
  });

  test("--shared-prefix-len N: every prompt starts with the same N tokens", async () => {
    const from = h.engine.requests.length;
    const r = await runBenchmark(cli("--random-input-len", "16", "--shared-prefix-len", "48", "--random-output-len", "2", "--num-prompts", "4"));
    expect(r.completed).toBe(4);
    expect(r.shared_prefix_len).toBe(48);
    expect(r.input_lens).toEqual([64, 64, 64, 64]); // the prefix's 48 tokens and each prompt's own 16
    const got = received(from);
    const prefix = got[0]!.slice(0, 1 + 48);
    for (const ids of got) {
      expect(ids.slice(0, 1 + 48)).toEqual(prefix);
      expect(ids.length).toBeGreaterThanOrEqual(1 + 48 + 15);
    }
    expect(new Set(got.map((ids) => ids.slice(49).join())).size).toBe(4);
  });

  test("--dataset-name sharegpt: the human turn is the prompt, the model's turn in tokens the output length", async () => {
    const file = join(dir, "sharegpt.json");
    const convs = [
      { id: "a", conversations: [{ from: "human", value: "Tell me a fortune about the sea and its ships." }, { from: "gpt", value: "You will sail far and find a harbour of friends." }] },
      { id: "b", conversations: [{ from: "human", value: "hi" }, { from: "gpt", value: "ok" }] }, // under 4 tokens: skipped, as vLLM does
      { id: "c", conversations: [{ from: "human", value: "What will tomorrow bring for a patient gardener?" }, { from: "gpt", value: "Roses." + " Many roses bloom in the spring.".repeat(2) }, { from: "human", value: "more" }] },
      { id: "d", conversations: [{ from: "human", value: "only one turn" }] },
    ];
    await Bun.write(file, JSON.stringify(convs));
    const from = h.engine.requests.length;
    const r = await runBenchmark(cli("--dataset-name", "sharegpt", "--dataset-path", file, "--num-prompts", "4"));
    expect(r.completed).toBe(4);
    const humans = new Set([convs[0]!, convs[2]!].map((c) => h.codec.encode(c.conversations[0]!.value, { addSpecialTokens: true }).join()));
    const answers = new Map([convs[0]!, convs[2]!].map((c) => [
      h.codec.encode(c.conversations[0]!.value, { addSpecialTokens: true }).join(),
      h.codec.encode(c.conversations[1]!.value, { addSpecialTokens: false }).length]));
    const reqs = h.engine.requests.slice(from);
    for (const q of reqs) {
      expect(humans.has(q.prompt_ids.join())).toBe(true);
      expect(q.params.max_tokens).toBe(answers.get(q.prompt_ids.join())!);
    }
    expect(new Set(reqs.map((q) => q.prompt_ids.join())).size).toBe(2); // both usable conversations, cycled
    const fixed = await loadRequests(cli("--dataset-path", file, "--sharegpt-output-len", "7", "--num-prompts", "3"));
    expect(fixed.map((q) => q.outputLen)).toEqual([7, 7, 7]);
  });

  test("--backend openai-chat goes to /v1/chat/completions", async () => {
    const a = cli("--backend", "openai-chat", "--random-input-len", "8", "--random-output-len", "2", "--num-prompts", "2");
    expect(a.path).toBe("/v1/chat/completions");
    const before = h.metrics.requests.get({ route: "/v1/chat/completions", status: "200" });
    const r = await runBenchmark(a);
    expect(r.completed).toBe(2);
    expect(h.metrics.requests.get({ route: "/v1/chat/completions", status: "200" })).toBe(before + 2);
    expect(cli("--endpoint", "/v1/completions").path).toBe("/v1/completions");
    expect(parseCli(["--model", "m", "--host", "10.0.0.2", "--port", "9000"]).baseUrl).toBe("http://10.0.0.2:9000");
  });

  test("--plot draws the latency histograms as an SVG and as a PNG", async () => {
    const svgFile = join(dir, "lat.svg"), pngFile = join(dir, "lat.png");
    await runBenchmark(cli("--random-input-len", "8", "--random-output-len", "6", "--num-prompts", "6", "--plot", svgFile));
    const svg = readFileSync(svgFile, "utf8");
    expect(svg.startsWith("<svg xmlns=\"http://www.w3.org/2000/svg\"")).toBe(true);
    for (const t of ["TTFT (ms)", "TPOT (ms)", "ITL (ms)", "E2EL (ms)", "n=6", "p99"]) expect(svg).toContain(t);
    const rendered = new Resvg(svg).render(); // a renderer accepts it: well-formed SVG
    expect(rendered.width).toBeGreaterThan(800);
    const r = await runBenchmark(cli("--random-input-len", "8", "--random-output-len", "6", "--num-prompts", "6", "--plot", pngFile));
    const png = readFileSync(pngFile);
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect(png.readUInt32BE(16)).toBe(rendered.width); // IHDR width: the same figure
    expect(png.length).toBeGreaterThan(10_000);
    expect(Array.isArray(r.warnings)).toBe(true);
    expect(() => cli("--plot", join(dir, "lat.jpg"))).toThrow(/svg or \.png/);
  });

  test("--save-result (bare, as vLLM's) with --result-dir and --result-filename", async () => {
    const a = cli("--random-input-len", "4", "--random-output-len", "2", "--num-prompts", "2", "--save-result", "--result-dir", dir, "--result-filename", "res.json");
    expect(a.saveResult).toBe(join(dir, "res.json"));
    expect(cli("--save-result").saveResult).toMatch(/^openai-infqps-fake-dsv3-\d{8}-\d{6}\.json$/);
    expect(cli("--save-result", "x.json").saveResult).toBe("x.json");
  });
});

describe("loadgen --help and usage errors", () => {
  const run = (...args: string[]) => {
    const p = Bun.spawnSync([process.execPath, script, ...args], { stdout: "pipe", stderr: "pipe" });
    return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
  };

  test("--help lists every flag the parser accepts and exits 0", () => {
    const r = run("--help");
    expect(r.code).toBe(0);
    expect(r.out).toBe(LOADGEN_USAGE + "\n");
    for (const flag of Object.keys(LOADGEN_OPTIONS)) expect(LOADGEN_USAGE).toMatch(new RegExp(`(^|[\\s\\[|])--${flag}(?![\\w-])`, "m"));
    expect(run("-h").code).toBe(0);
  });

  test("a usage error exits 2 with the message and the usage on stderr", () => {
    for (const args of [["--model", "m", "--bogus"], ["--model", "m", "--dataset-name", "sonnet"], ["--num-prompts", "3"],
      ["--model", "m", "--dataset-name", "sharegpt"], ["--model", "m", "--backend", "tgi"]]) {
      const r = run(...args);
      expect(r.code).toBe(2);
      expect(r.out).toBe("");
      expect(r.err).toContain("usage: bun scripts/loadgen.ts");
    }
  });
});
