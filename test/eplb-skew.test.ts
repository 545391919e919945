// make-model --router-skew S: only the gates' correction biases change (Zipf-like, expert 0
// hottest), and the router's observed load is skewed accordingly; S = 0 is today's checkpoint.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openCheckpoint } from "../src/checkpoint/checkpoint.ts";
import { skewBias } from "../src/checkpoint/router-skew.ts";
import { DirectBackend } from "../src/engine/direct.ts";

const root = new URL("..", import.meta.url).pathname;
let dir: string;

function makeModel(...args: string[]) {
  const p = Bun.spawnSync([process.execPath, "src/cli.ts", "make-model", "--preset", "bench-s", "--quiet", ...args], {
    cwd: root, stdout: "pipe", stderr: "pipe", env: { ...process.env, MOE_PROGRESS: "off" },
  });
  return { code: p.exitCode, err: p.stderr.toString() };
}

/** Tokens per expert (all MoE layers) over one 256-token prompt, and max/mean of it. */
async function expertLoad(model: string): Promise<{ load: number[]; maxOverMean: number }> {
  const b = new DirectBackend(model, { pages: 32, pageSize: 16 });
  const prompt = Array.from({ length: 256 }, (_, i) => ((i * 7919) % 4000) + 3);
  await b.step(0, [{ seq: "s", tokens: prompt, start: 0, pages: Array.from({ length: 16 }, (_, i) => i) }]);
  const load = new Array<number>(b.config.n_routed_experts).fill(0);
  for (const v of Object.values(await b.expertLoad())) v.forEach((x, e) => (load[e]! += x));
  const mean = load.reduce((a, x) => a + x, 0) / load.length;
  return { load, maxOverMean: Math.max(...load) / mean };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "router-skew-"));
  for (const [name, args] of [["plain", []], ["s0", ["--router-skew", "0"]], ["s2", ["--router-skew", "2"]]] as const) {
    const r = makeModel("--out", join(dir, name), ...args);
    if (r.code !== 0) throw new Error(`make-model ${args.join(" ")}: ${r.err}`);
  }
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("make-model --router-skew", () => {
  test("S = 0 writes the same bytes as no flag", () => {
    for (const f of readdirSync(join(dir, "plain")).filter((f) => f.endsWith(".safetensors")))
      expect(readFileSync(join(dir, "s0", f)).equals(readFileSync(join(dir, "plain", f)))).toBe(true);
  });

  test("only the correction biases move, by the Zipf-like skew", () => {
    const a = openCheckpoint(join(dir, "plain")), b = openCheckpoint(join(dir, "s2"));
    const biases = a.names().filter((n) => n.endsWith("e_score_correction_bias"));
    expect(biases.length).toBe(3); // 2 MoE layers + the MTP layer
    for (const n of a.names()) {
      const x = a.raw(n, [a.info(n).dtype], a.info(n).shape).bytes, y = b.raw(n, [b.info(n).dtype], b.info(n).shape).bytes;
      if (!biases.includes(n)) expect(Buffer.from(y).equals(Buffer.from(x))).toBe(true);
    }
    for (const n of biases) {
      const x = a.f32(n, [16]), y = b.f32(n, [16]);
      x.forEach((v, e) => expect(Math.abs(y[e]! - v - skewBias(e, 2))).toBeLessThan(1e-6));
    }
  });

  test("the router's load follows it: expert 0 hottest, far above the mean", async () => {
    const plain = await expertLoad(join(dir, "plain")), skewed = await expertLoad(join(dir, "s2"));
    expect(plain.maxOverMean).toBeLessThan(2);
    expect(skewed.maxOverMean).toBeGreaterThan(3);
    expect(skewed.load.indexOf(Math.max(...skewed.load))).toBe(0);
    // the first four (one gate group) carry most of it
    expect(skewed.load.slice(0, 4).reduce((a, x) => a + x, 0)).toBeGreaterThan(skewed.load.reduce((a, x) => a + x, 0) / 2);
  }, 60_000);

  test("a negative or non-numeric skew is a usage error (exit 2)", () => {
    for (const bad of ["--router-skew=-1", "--router-skew=abc"]) {
      const r = makeModel("--out", join(dir, "bad"), bad);
      expect(r.code).toBe(2);
      expect(r.err).toContain("--router-skew must be a number in [0, 100]");
    }
  });
});
