// llama.cpp's CPU speed on a GGUF, through node-llama-cpp's prebuilt llama.cpp (llama.cpp is not
// packaged for this image; npm is reachable). Installed outside the project, never a dependency:
//   mkdir -p /tmp/llama && cd /tmp/llama && npm init -y && npm i -E node-llama-cpp@3.21.1
// Run with node (the addon is a Node-API module); the install is found by --llama-dir,
// $LLAMA_NODE_DIR or /tmp/llama. CPU only, the prebuilt binary only (gpu: false, build: "never").
//   node scripts/bench-llama-node.mjs --gguf F [--threads 2] [--passes 3] [--flash-attn on|off|auto]
//        [--decode-depth 0]
// prints {"pp512_tok_s", "tg128_tok_s", ...}, each the best over passes: a 512-token prompt
// prefilled in one batch (as llama-bench pp512), and 128 greedy decode steps at batch 1 from
// --decode-depth cached positions (0: an empty context, as llama-bench tg128). Also
// tg_best32_tok_s: the fastest 32 consecutive steps (how scripts/bench.ts times its decode).
//   node scripts/bench-llama-node.mjs --gguf F --ids 0,5,9 [--max-tokens 8] [--flash-attn off]
// prints {"ids", "top5"}: the greedy continuation (compare `moe generate --ids ... --json
// --ignore-eos`) and the first step's 5 likeliest tokens with probabilities (compare `moe logits`).
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

// On a 2-core machine node's own helper threads (libuv's pool of 4, V8's concurrent GC) compete with
// llama.cpp's compute threads: 2-thread Q8_0 decode measured 50-70 tok/s with them, a steady ~120
// without. So the script runs itself again with one libuv thread and single-threaded GC, which
// leaves the machine to llama.cpp as llama-bench would.
if (process.env.UV_THREADPOOL_SIZE !== "1" || !process.execArgv.includes("--single-threaded-gc")) {
  const env = { ...process.env, UV_THREADPOOL_SIZE: "1" };
  const r = spawnSync(process.execPath, ["--single-threaded-gc", fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: "inherit", env });
  process.exit(r.status ?? 1);
}

const { values: a } = parseArgs({
  options: {
    gguf: { type: "string" }, threads: { type: "string", default: "2" }, passes: { type: "string", default: "3" },
    "llama-dir": { type: "string" }, prompt: { type: "string", default: "512" }, gen: { type: "string", default: "128" },
    "decode-depth": { type: "string", default: "0" }, "flash-attn": { type: "string" },
    ids: { type: "string" }, "max-tokens": { type: "string", default: "8" },
  },
});
if (!a.gguf) throw new Error("--gguf FILE is required");
const dir = resolve(a["llama-dir"] ?? process.env.LLAMA_NODE_DIR ?? "/tmp/llama");
let entry;
try {
  entry = createRequire(join(dir, "package.json")).resolve("node-llama-cpp");
} catch {
  throw new Error(`node-llama-cpp is not installed under ${dir} (npm i -E node-llama-cpp@3.21.1 there, or set LLAMA_NODE_DIR)`);
}
const { getLlama, LlamaLogLevel } = await import(entry);

// Speed: on, as llama-bench's default (-fa auto) resolves on a CPU (node-llama-cpp's "auto" leaves it
// off). --ids: off, whose f32 attention scores reproduce our logits exactly on an f32 GGUF.
const flashAttention = { on: true, off: false, auto: "auto" }[a["flash-attn"] ?? (a.ids === undefined ? "on" : "off")];
if (flashAttention === undefined) throw new Error(`--flash-attn ${a["flash-attn"]}: expected on, off or auto`);
const threads = Number(a.threads), passes = Number(a.passes), nPrompt = Number(a.prompt), nGen = Number(a.gen);
const depth = Number(a["decode-depth"]);
const llama = await getLlama({ gpu: false, build: "never", maxThreads: threads, logLevel: LlamaLogLevel.error, progressLogs: false });
const model = await llama.loadModel({ modelPath: resolve(a.gguf), gpuLayers: 0 });
const context = await model.createContext({
  contextSize: Math.max(nPrompt, depth) + nGen + 64, batchSize: nPrompt,
  threads: { ideal: threads, min: threads }, sequences: 1, flashAttention,
});
const seq = context.getSequence();

/** Greedy decode of `n` tokens after what the sequence holds, from `first`; the time of each step (ms). */
async function decode(first, n, out = []) {
  const ms = [];
  let t = performance.now();
  if (n > 0)
    for await (const tok of seq.evaluate([first], { temperature: 0 })) {
      const now = performance.now();
      ms.push(now - t);
      t = now;
      out.push(tok);
      if (out.length >= n) break;
    }
  return ms;
}

// Ordinary token ids past the first few specials, the same every pass.
const tokens = (n, salt) => Array.from({ length: n }, (_, i) => 3 + ((Math.imul(i + 1 + salt, 2654435761) >>> 0) % 4000));
const rate = (n, ms) => (n / ms) * 1e3;

if (a.ids !== undefined) {
  const ids = a.ids.split(",").map(Number);
  let top5 = []; // the first step's distribution (softmax at temperature 1)
  for await (const o of seq.evaluateWithMetadata(ids, { probabilities: true }, { temperature: 1, topK: 0, topP: 1, minP: 0 })) {
    top5 = [...o.probabilities.entries()].sort((x, y) => y[1] - x[1]).slice(0, 5).map(([t, p]) => [t, +p.toFixed(5)]);
    break;
  }
  await seq.clearHistory();
  await seq.evaluateWithoutGeneratingNewTokens(ids.slice(0, -1));
  const out = [];
  await decode(ids[ids.length - 1], Number(a["max-tokens"]), out);
  process.stdout.write(JSON.stringify({ ids: out, top5 }) + "\n");
} else {
  const prompt = tokens(nPrompt, 0), history = tokens(depth, 7919);
  // Warm-up, untimed (llama-bench warms up too; scripts/bench.ts prefills 128 tokens first): maps the
  // weights' pages and sizes the compute buffers.
  await seq.evaluateWithoutGeneratingNewTokens(prompt);
  await decode(prompt[0], 4);
  let pp = 0, tg = 0, tg32 = 0;
  for (let p = 0; p < passes; p++) {
    await seq.clearHistory();
    const t0 = performance.now();
    await seq.evaluateWithoutGeneratingNewTokens(prompt);
    const ppPass = rate(nPrompt, performance.now() - t0);
    await seq.clearHistory();
    if (depth > 0) await seq.evaluateWithoutGeneratingNewTokens(history);
    const first = model.tokens.bos ?? prompt[0];
    const ms = await decode(first, nGen);
    if (ms.length !== nGen) throw new Error(`decode produced ${ms.length} tokens, expected ${nGen}`);
    const tgPass = rate(nGen, ms.reduce((x, y) => x + y, 0));
    for (let i = 0; i + 32 <= ms.length; i++) tg32 = Math.max(tg32, rate(32, ms.slice(i, i + 32).reduce((x, y) => x + y, 0)));
    pp = Math.max(pp, ppPass);
    tg = Math.max(tg, tgPass);
    process.stderr.write(`llama.cpp pass ${p + 1}: pp${nPrompt} ${ppPass.toFixed(1)} tok/s, tg${nGen} ${tgPass.toFixed(1)} tok/s\n`);
  }
  const r2 = (x) => +x.toFixed(2);
  process.stdout.write(JSON.stringify({
    pp512_tok_s: r2(pp), tg128_tok_s: r2(tg), tg_best32_tok_s: r2(tg32), prompt: nPrompt, gen: nGen, decode_depth: depth,
    threads, flash_attention: context.flashAttention, llama_cpp: llama.llamaCppRelease, gguf: resolve(a.gguf),
  }) + "\n");
}
await context.dispose();
await model.dispose();
await llama.dispose();
