// scripts/loadgen.ts against the app on a real socket (few requests, short), as a subprocess and as a
// library.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { parseCli, percentile, runBenchmark, UsageError } from "../../scripts/loadgen.ts";
import { serveApp } from "../../src/gateway/server.ts";
import { harness, type Harness, MODEL } from "./helpers.ts";

let h: Harness;
let server: ReturnType<typeof serveApp>;
let base: string;

beforeAll(async () => {
  h = await harness({ stepMs: 1 });
  server = serveApp(h.app, { port: 0 });
  base = `http://127.0.0.1:${server.port}`;
});
afterAll(() => server.stop(true));

const FIELDS = ["completed", "failed", "total_input_tokens", "total_output_tokens", "request_throughput", "output_throughput",
  "total_token_throughput", "request_goodput", "duration"];
for (const m of ["ttft", "tpot", "itl", "e2el"]) FIELDS.push(`mean_${m}_ms`, `median_${m}_ms`, `p50_${m}_ms`, `p90_${m}_ms`, `p99_${m}_ms`);

describe("loadgen", () => {
  test("CLI: fixed concurrency, completions, --json with vLLM field names and a table", async () => {
    const proc = Bun.spawn([process.execPath, join(import.meta.dir, "../../scripts/loadgen.ts"), "--base-url", base, "--model", MODEL,
      "--endpoint", "completions", "--num-prompts", "6", "--concurrency", "3", "--input-len", "8", "--output-len", "5",
      "--ignore-eos", "--goodput", "ttft:60000", "tpot:60000", "--json", "--max-seconds", "20"], { stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    expect(code).toBe(0);
    const r = JSON.parse(out);
    for (const f of FIELDS) expect(typeof r[f]).toBe("number");
    expect(r.completed).toBe(6);
    expect(r.failed).toBe(0);
    expect(r.total_output_tokens).toBe(30);
    expect(r.total_input_tokens).toBeGreaterThanOrEqual(6 * 8);
    expect(r.request_goodput).toBeCloseTo(r.request_throughput, 6);
    expect(err).toContain("Serving Benchmark Result");
    expect(err).toContain("P99 TTFT (ms):");
  });

  test("library: Poisson arrivals on chat; a strict SLO gives zero goodput; errors are counted", async () => {
    const args = parseCli(["--base-url", base, "--model", MODEL, "--endpoint", "chat", "--num-prompts", "4",
      "--request-rate", "50", "--burstiness", "2", "--output-len", "3", "--ignore-eos", "--goodput", "e2el:0"]);
    const r = await runBenchmark(args);
    expect(r.completed).toBe(4);
    expect(r.total_output_tokens).toBe(12);
    expect(r.request_goodput).toBe(0);
    const bad = await runBenchmark(parseCli(["--base-url", base, "--model", "nope", "--num-prompts", "2", "--output-len", "2"]));
    expect(bad.completed).toBe(0);
    expect(bad.failed).toBe(2);
    expect((bad.errors as string[])[0]).toContain("404");
  });

  test("--max-seconds bounds a run", async () => {
    const r = await runBenchmark(parseCli(["--base-url", base, "--model", MODEL, "--num-prompts", "100", "--request-rate", "20",
      "--output-len", "200", "--input-len", "4", "--ignore-eos", "--max-seconds", "0.3"]));
    expect(r.duration as number).toBeLessThan(2);
    expect((r.not_sent as number) > 0).toBe(true);
  });

  test("percentiles interpolate like numpy; bad flags are refused", () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2.5);
    expect(percentile([1, 2, 3, 4], 99)).toBeCloseTo(3.97, 10);
    expect(() => parseCli(["--base-url", base])).toThrow(UsageError); // --model is required; the URL has a default
    expect(() => parseCli(["--base-url", base, "--model", "m", "--goodput", "latency:5"])).toThrow();
    expect(() => parseCli(["--base-url", base, "--model", "m", "--endpoint", "embeddings"])).toThrow();
  });
});
