// How a decode step's time divides between the kernels and the runtime (actors, messages, JS):
// the same batch-1 decode runs on the calling thread (direct) and under each scaling config;
// inside the direct run every kernel call is timed.
//   npx bun scripts/bench-step.ts --model DIR [--steps N] [--prompt N] [--scaling a.yaml,b.yaml] [--json]
import { readdirSync } from "node:fs";
import { DirectBackend } from "../src/engine/direct.ts";
import type { ModelBackend } from "../src/engine/backend.ts";
import { createBackend } from "../src/commands/backend.ts";
import { cpuKernels } from "../src/kernels/kernels.ts";
import { type CommandSpec, parseOrExit } from "../src/commands/spec.ts";

export const BENCH_STEP = {
  name: "npx bun scripts/bench-step.ts",
  summary: "How a batch-1 decode step divides between the kernels and the runtime, direct and under each scaling config.",
  flags: {
    model: { type: "string", arg: "DIR", default: "models/fortune-dsv3", help: "model directory (default models/fortune-dsv3)" },
    steps: { type: "string", arg: "N", default: "64", help: "decode steps timed (default 64)" },
    prompt: { type: "string", arg: "N", default: "128", help: "prompt tokens before decoding (default 128)" },
    scaling: { type: "string", arg: "a.yaml,b.yaml", help: "scaling configs to compare (default: every configs/scaling/*.yaml but nats-*)" },
    json: { type: "boolean", help: "print one JSON object" },
  },
} as const satisfies CommandSpec;

async function main(): Promise<void> {
  const a = parseOrExit(process.argv.slice(2), BENCH_STEP);
  const steps = Number(a.steps), promptLen = Number(a.prompt);
  const dir = new URL("../configs/scaling/", import.meta.url).pathname;
  const configs = a.scaling ? a.scaling.split(",") : readdirSync(dir).filter((f) => f.endsWith(".yaml") && !f.startsWith("nats-")).map((f) => dir + f);

  /** ms per decode step at batch 1 after a prompt, greedy (the token fed is the previous argmax). */
  async function decodeMs(b: ModelBackend, timeKernels = false): Promise<number> {
    const pages = Array.from({ length: Math.ceil((promptLen + steps + 8) / b.pageSize) }, (_, i) => i);
    const prompt = Array.from({ length: promptLen }, (_, i) => (i * 7919) % Math.min(b.config.vocab_size, 4000) + 3);
    const sample = { temperature: 0, top_p: 1, top_k: 0, min_p: 0, presence_penalty: 0, frequency_penalty: 0, repetition_penalty: 1, u: 0, logprobs: null, output: [] };
    let [r] = await b.step(0, [{ seq: "s", tokens: prompt, start: 0, pages, sample }]);
    for (let w = 0; w < 4; w++) [r] = await b.step(0, [{ seq: "s", tokens: [r.sampled!.token], start: promptLen + w, pages, sample }]);
    timing = timeKernels;
    const t0 = performance.now();
    for (let j = 0; j < steps; j++) [r] = await b.step(0, [{ seq: "s", tokens: [r.sampled!.token], start: promptLen + 4 + j, pages, sample }]);
    const ms = (performance.now() - t0) / steps;
    timing = false;
    return ms;
  }

  // Time every kernel call of the direct run.
  const k = cpuKernels() as unknown as Record<string, (...x: unknown[]) => unknown>;
  let kernelMs = 0, timing = false;
  for (const name of Object.keys(k)) {
    const f = k[name];
    if (typeof f !== "function" || name === "threads") continue;
    k[name] = (...x: unknown[]) => {
      if (!timing) return f(...x);
      const t = performance.now();
      try { return f(...x); } finally { kernelMs += performance.now() - t; }
    };
  }
  const kvTokens = promptLen + steps + 64;
  const direct = new DirectBackend(a.model!, { pages: Math.ceil(kvTokens / 16), pageSize: 16 });
  await decodeMs(direct);
  const directMs = await decodeMs(direct, true);
  const kernelPerStep = kernelMs / steps;
  const rows: Record<string, number | string>[] = [{ placement: "direct (no actors)", step_ms: directMs, runtime_share: 1 - kernelPerStep / directMs }];
  for (const cfg of configs) {
    const b = await createBackend({ model: a.model!, scaling: cfg, kvTokens });
    await decodeMs(b);
    const ms = await decodeMs(b);
    rows.push({ placement: cfg.split("/").pop()!, step_ms: ms, runtime_share: 1 - kernelPerStep / ms });
    await b.close();
  }
  const out = { model: a.model, prompt: promptLen, steps, kernel_ms_per_step: kernelPerStep, placements: rows };
  if (a.json) console.log(JSON.stringify(out));
  else {
    console.log(`decode step at batch 1 after a ${promptLen}-token prompt (${a.model}); kernels take ${kernelPerStep.toFixed(3)} ms of each step`);
    for (const r of rows) console.log(`${String(r.placement).padEnd(28)} ${Number(r.step_ms).toFixed(3).padStart(8)} ms/step   runtime (actors, messages, JS) ${(100 * Number(r.runtime_share)).toFixed(1)}%`);
  }
  process.exit(0);
}

if (import.meta.main) await main();
