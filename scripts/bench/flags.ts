// The flags of scripts/bench.ts (test/help.test.ts reads them without running the benchmark).
import type { CommandSpec } from "../../src/commands/spec.ts";

export const BENCH = {
  name: "npx bun scripts/bench.ts",
  summary: "CPU benchmark of a model: prefill and decode tokens/s, peak RSS, weight bytes per token, share of measured memory bandwidth.",
  flags: {
    model: { type: "string", arg: "DIR", help: "model directory (required; e.g. make-model --preset bench-m)" },
    threads: { type: "string", arg: "N", help: "kernel threads (default: all cores)" },
    reps: { type: "string", arg: "R", default: "3", help: "passes per measurement, best kept (default 3)" },
    steps: { type: "string", arg: "S", default: "32", help: "decode steps per pass (default 32)" },
    json: { type: "boolean", default: false, help: "print one JSON line with every figure" },
    "no-depth": { type: "boolean", default: false, help: "skip decode at depth 1024" },
    profile: { type: "boolean", default: false, help: "print per-kernel ms of a batch-1 decode step" },
    quick: { type: "boolean", default: false, help: "decode batch 1 only (A/B comparisons of kernels)" },
    scaling: { type: "string", arg: "FILE", help: "run through the actors of this scaling config instead of in-thread" },
    speculative: { type: "string", arg: "mtp", help: "also measure MTP speculative decoding (acceptance, tok/s with and without)" },
    "draft-tokens": { type: "string", arg: "K", default: "1", help: "draft tokens per step with --speculative mtp (default 1)" },
  },
} as const satisfies CommandSpec;
