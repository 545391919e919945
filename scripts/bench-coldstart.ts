// A cold start against the machine's own read rate (ServerlessLLM's yardstick): the shard files
// are first read back with large sequential reads (read_gbs), then a backend is started with no
// actor active and asked for one token (host start, weight load, first token), then asked again
// (warm). Both figures start from the same page-cache state: each shard is dropped from the cache
// with posix_fadvise(DONTNEED) before it is read (clean pages need no root); `cache` says whether
// that drop worked. Bytes loaded are this process's reads (threads, i.e. Bun workers, included).
//   npx bun scripts/bench-coldstart.ts --model DIR [--scaling FILE] [--prompt N] [--json]
import { dlopen, FFIType } from "bun:ffi";
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { createBackend, DEFAULT_SCALING } from "../src/commands/backend.ts";
import { type CommandSpec, parseOrExit } from "../src/commands/spec.ts";
import type { ModelBackend } from "../src/engine/backend.ts";

export const BENCH_COLDSTART = {
  name: "npx bun scripts/bench-coldstart.ts",
  summary: "Cold-start TTFT (host start, weight load, first token) next to the warm TTFT and the machine's file read rate.",
  flags: {
    model: { type: "string", arg: "DIR", default: "models/fortune-dsv3", help: "model directory (default models/fortune-dsv3)" },
    scaling: { type: "string", arg: "FILE", help: "scaling config (default configs/scaling/single-worker.yaml)" },
    prompt: { type: "string", arg: "N", default: "16", help: "prompt tokens of the first request (default 16)" },
    json: { type: "boolean", help: "print one JSON object" },
  },
} as const satisfies CommandSpec;

const POSIX_FADV_DONTNEED = 4;
let fadvise: ((fd: number) => boolean) | null | undefined;

/** Drops a file's clean pages from the page cache; false where that cannot be done. */
function dropFromCache(path: string): boolean {
  if (fadvise === undefined) {
    fadvise = null;
    try {
      const libc = dlopen("libc.so.6", { posix_fadvise: { args: [FFIType.i32, FFIType.i64, FFIType.i64, FFIType.i32], returns: FFIType.i32 } });
      fadvise = (fd) => libc.symbols.posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) === 0;
    } catch {
      fadvise = null;
    }
  }
  if (!fadvise) return false;
  const fd = openSync(path, "r");
  try {
    return fadvise(fd);
  } finally {
    closeSync(fd);
  }
}

function shards(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith(".safetensors")).sort().map((f) => join(dir, f));
}

/** Bytes read by this process so far (every thread), from /proc/self/io; null off Linux. */
function bytesRead(): number | null {
  if (!existsSync("/proc/self/io")) return null;
  const m = /rchar:\s*(\d+)/.exec(readFileSync("/proc/self/io", "utf8"));
  return m ? Number(m[1]) : null;
}

/** The machine's file read rate: every shard read front to back in 64 MiB reads. */
function readRate(files: string[]): { gbs: number; bytes: number } {
  const buf = Buffer.allocUnsafe(64 << 20);
  let bytes = 0;
  const t0 = performance.now();
  for (const f of files) {
    const fd = openSync(f, "r");
    try {
      for (let n; (n = readSync(fd, buf, 0, buf.byteLength, null)) > 0;) bytes += n;
    } finally {
      closeSync(fd);
    }
  }
  return { gbs: bytes / 1e9 / ((performance.now() - t0) / 1000), bytes };
}

async function main(): Promise<void> {
  const a = parseOrExit(process.argv.slice(2), BENCH_COLDSTART);
  const model = a.model!, promptLen = Number(a.prompt);
  const files = shards(model);
  if (files.length === 0) {
    console.error(`${model}: no *.safetensors shards`);
    process.exit(2);
  }
  const dropped = files.map(dropFromCache).every(Boolean);
  const read = readRate(files);
  files.forEach(dropFromCache);

  const sample = { temperature: 0, top_p: 1, top_k: 0, min_p: 0, presence_penalty: 0, frequency_penalty: 0, repetition_penalty: 1, u: 0, logprobs: null, output: [] };
  const firstToken = async (b: ModelBackend, seq: string): Promise<void> => {
    const prompt = Array.from({ length: promptLen }, (_, i) => (i * 7919) % Math.min(b.config.vocab_size, 4000) + 3);
    const n = Math.ceil((promptLen + 1) / b.pageSize);
    const pages = Array.from({ length: n }, (_, i) => i + (seq === "warm" ? n : 0));
    await b.step(0, [{ seq, tokens: prompt, start: 0, pages, sample }]);
  };

  const rchar0 = bytesRead();
  const t0 = performance.now();
  const b = await createBackend({ model, scaling: a.scaling ?? DEFAULT_SCALING, kvTokens: 2 * (promptLen + 64) });
  const hostStartMs = performance.now() - t0;
  await firstToken(b, "cold");
  const coldMs = performance.now() - t0;
  const loaded = bytesRead() !== null && rchar0 !== null ? (bytesRead() as number) - rchar0 : null;
  const t1 = performance.now();
  await firstToken(b, "warm");
  const warmMs = performance.now() - t1;
  await b.close();

  // The load is what a cold first token costs beyond host start and a warm first token.
  const loadMs = Math.max(coldMs - hostStartMs - warmMs, 1e-3);
  const out = {
    model, scaling: a.scaling ?? DEFAULT_SCALING, prompt: promptLen,
    cache: dropped ? "dropped (posix_fadvise DONTNEED) before the read test and before the cold start" : "as found (could not drop pages: both figures may read from the page cache)",
    read_gbs: read.gbs, shard_bytes: read.bytes,
    cold_start_ttft_ms: coldMs, host_start_ms: hostStartMs, load_ms: loadMs, warm_ttft_ms: warmMs,
    weight_bytes_loaded: loaded, load_gbs: loaded === null ? null : loaded / 1e9 / (loadMs / 1000),
  };
  if (a.json) console.log(JSON.stringify(out));
  else {
    console.log(`cold start of ${model} under ${out.scaling} (page cache ${dropped ? "dropped" : "as found"})`);
    console.log(`file read rate      ${read.gbs.toFixed(2)} GB/s (${(read.bytes / 1e9).toFixed(2)} GB in 64 MiB reads)`);
    console.log(`cold-start TTFT     ${coldMs.toFixed(0)} ms (hosts up in ${hostStartMs.toFixed(0)} ms, loading ${loadMs.toFixed(0)} ms)`);
    console.log(`warm TTFT           ${warmMs.toFixed(1)} ms`);
    if (loaded !== null) console.log(`weights loaded      ${(loaded / 1e9).toFixed(2)} GB at ${out.load_gbs!.toFixed(2)} GB/s (${(100 * out.load_gbs! / read.gbs).toFixed(0)}% of the read rate)`);
  }
  process.exit(0);
}

if (import.meta.main) await main();
