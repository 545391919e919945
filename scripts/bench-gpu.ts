// GPU benchmark: prefill and decode tokens/s of the device-resident forward pass (one sequence,
// test/gpu/forward.ts) on a checkpoint such as bench-m, and the memory bandwidth decode reaches
// against the device's peak. Prints a summary, then one JSON line.
//   npx bun scripts/bench-gpu.ts --model /tmp/bench-m [--backend cuda|hip] [--device 0]
//     [--prompt 512] [--decode 128] [--repeat 3] [--peak-gbs 4800] [--lib kernels/build/libmoe_emu.so]
// Decode is the latency of one token at a time (batch 1), synchronised every step, as a server
// decoding one sequence sees it; its bandwidth counts the weights one token reads (attention,
// dense and shared layers, the chosen experts, the head).
import { Device } from "../src/kernels/device.ts";
import { GpuForward } from "../test/gpu/forward.ts";

import { type CommandSpec, UsageError, parseOrExit } from "../src/commands/spec.ts";

export const BENCH_GPU = {
  name: "npx bun scripts/bench-gpu.ts",
  summary: "GPU benchmark: prefill and batch-1 decode tokens/s of the device-resident forward pass, and the memory bandwidth decode reaches.",
  flags: {
    model: { type: "string", arg: "DIR", help: "model directory (required; make one: npx moe make-model --preset bench-m --format fp8 --out DIR)" },
    backend: { type: "string", arg: "cuda|hip", default: "cuda", help: "device library (default cuda)" },
    device: { type: "string", arg: "N", default: "0", help: "device index (default 0)" },
    prompt: { type: "string", arg: "N", default: "512", help: "prefill tokens (default 512)" },
    decode: { type: "string", arg: "N", default: "128", help: "decode steps (default 128)" },
    repeat: { type: "string", arg: "R", default: "3", help: "prefill passes, best kept (default 3)" },
    "peak-gbs": { type: "string", arg: "GB/s", default: process.env.MOE_GPU_PEAK_GBS ?? "", help: "the device's peak memory bandwidth (default MOE_GPU_PEAK_GBS)" },
    lib: { type: "string", arg: "FILE", help: "a device library other than kernels/build's (e.g. kernels/build/libmoe_emu.so)" },
  },
} as const satisfies CommandSpec;

async function main(): Promise<void> {
  const a = parseOrExit(process.argv.slice(2), BENCH_GPU, (v) => {
    if (!v.model) throw new UsageError("--model DIR is required");
  });
  const backend = a.backend === "hip" ? "hip" : "cuda";
  const P = Number(a.prompt), N = Number(a.decode), R = Number(a.repeat), peak = Number(a["peak-gbs"]) || 0;

  const device = Device.open(backend, Number(a.device), a.lib);
  const t0 = performance.now();
  const m = new GpuForward(device, a.model!, P + N + 1);
  const loadS = (performance.now() - t0) / 1000;
  const c = m.c;
  let seed = 1;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) % (c.vocab_size - 2)) + 2;
  const prompt = Array.from({ length: P }, rand);

  // Warm-up: first launches load modules and grow the scratch buffers.
  m.run(prompt.slice(0, Math.min(P, 64)), 0);
  m.argmax();
  m.run([prompt[0]], Math.min(P, 64));
  m.argmax();

  const prefillMs: number[] = [];
  for (let r = 0; r < R; r++) {
    const t = performance.now();
    m.run(prompt, 0);
    m.argmax(); // waits for the stream
    prefillMs.push(performance.now() - t);
  }
  let tok = m.argmax();
  const steps: number[] = [];
  for (let i = 0; i < N; i++) {
    const t = performance.now();
    m.run([tok], P + i);
    tok = m.argmax();
    steps.push(performance.now() - t);
  }
  m.destroy();

  const best = Math.min(...prefillMs);
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  const decodeS = steps.reduce((x, y) => x + y, 0) / 1000;
  const decodeTps = N / decodeS, gbs = (m.bytesPerToken * decodeTps) / 1e9;
  const result = {
    device: `${device.name}:${device.index}`,
    model: a.model,
    params: { layers: c.num_hidden_layers, hidden: c.hidden_size, experts: c.n_routed_experts, k: c.num_experts_per_tok, vocab: c.vocab_size },
    load_s: +loadS.toFixed(2),
    prefill: { tokens: P, best_ms: +best.toFixed(2), tokens_per_s: +((P / best) * 1000).toFixed(1) },
    decode: { tokens: N, median_step_ms: +median(steps).toFixed(3), tokens_per_s: +decodeTps.toFixed(1) },
    bandwidth: {
      bytes_per_token: m.bytesPerToken,
      achieved_gbs: +gbs.toFixed(1),
      peak_gbs: peak || null,
      fraction_of_peak: peak ? +(gbs / peak).toFixed(4) : null,
    },
  };
  console.log(`bench-gpu on ${result.device} (${a.model}; load ${result.load_s}s)`);
  console.log(`  prefill ${P} tokens: ${result.prefill.best_ms} ms -> ${result.prefill.tokens_per_s} tokens/s`);
  console.log(`  decode  ${N} tokens: ${result.decode.median_step_ms} ms/token -> ${result.decode.tokens_per_s} tokens/s`);
  console.log(`  decode reads ${(m.bytesPerToken / 1e6).toFixed(1)} MB of weights per token -> ${result.bandwidth.achieved_gbs} GB/s` +
    (peak ? ` = ${(100 * result.bandwidth.fraction_of_peak!).toFixed(1)}% of ${peak} GB/s peak` : " (peak unknown: pass --peak-gbs)"));
  console.log(JSON.stringify(result));
}

if (import.meta.main) await main();
