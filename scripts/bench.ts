// CPU benchmark of a model directory: prefill and decode throughput, peak memory, the weight bytes
// a decoded token streams and the share of the machine's measured memory bandwidth that achieves.
//   npx bun scripts/bench.ts --model DIR [--threads N] [--reps R] [--steps S] [--json] (--help: every flag)
// Drives the model directly (Transformer + LocalMoE, pages from the engine's BlockManager) through
// one `Stepper`; swapping it for the engine/actor path leaves the measurements unchanged.
import { type Checkpoint, openCheckpoint } from "../src/checkpoint/checkpoint.ts";
import { BlockManager } from "../src/engine/blocks.ts";
import { cpuKernels, type Kernels } from "../src/kernels/kernels.ts";
import { buildBatch } from "../src/model/batch.ts";
import type { LatentCache } from "../src/model/kvcache.ts";
import { LocalMoE } from "../src/model/moe.ts";
import { Transformer } from "../src/model/transformer.ts";
import type { ModelBackend } from "../src/engine/backend.ts";
import { createBackend } from "../src/commands/backend.ts";
import { measureSpeculative } from "../src/engine/speculative.ts";
import { UsageError, parseOrExit } from "../src/commands/spec.ts";
import { BENCH } from "./bench/flags.ts";
import { bytesPerToken, paramCount } from "./bench/weights.ts";

/** One forward step over sequences; returns the next token (argmax) of each. */
export interface Stepper {
  step(work: { seq: string; tokens: number[]; start: number }[]): Promise<number[]>;
  release(seq: string): void;
}

/** Wraps every kernel so that the time spent inside the library is accounted (the JS share),
 * in total and per kernel name. */
function timedKernels(k: Kernels, clock: { ms: number; by: Map<string, number> }): Kernels {
  const out: Record<string, unknown> = {};
  for (const [name, v] of Object.entries(k)) {
    if (typeof v !== "function") { out[name] = v; continue; }
    out[name] = (...a: unknown[]) => {
      const t0 = performance.now();
      try { return (v as (...x: unknown[]) => unknown).apply(k, a); } finally {
        const dt = performance.now() - t0;
        clock.ms += dt;
        // linear is split by weight (layer index dropped): which projection costs what
        const w = name === "linear" ? (a[2] as { name?: string }).name : undefined;
        const key = w ? `linear:${w.replace(/^model\.layers\.\d+\./, "").replace(/\.weight$/, "")}` : name;
        clock.by.set(key, (clock.by.get(key) ?? 0) + dt);
      }
    };
  }
  return out as unknown as Kernels;
}

class DirectStepper implements Stepper {
  readonly model: Transformer;
  readonly moe: LocalMoE;
  readonly caches: LatentCache[];
  readonly books: BlockManager;

  constructor(ck: Checkpoint, readonly k: Kernels, pages: number, readonly pageSize: number) {
    this.model = new Transformer(ck, ck.config, k);
    this.moe = new LocalMoE(ck, ck.config, k);
    this.caches = this.model.newCaches(pages, pageSize);
    this.books = new BlockManager(pages, pageSize);
  }

  async step(work: { seq: string; tokens: number[]; start: number }[]): Promise<number[]> {
    for (const w of work) if (!this.books.grow(w.seq, w.start + w.tokens.length)) throw new Error("bench: KV cache full");
    const b = buildBatch(work.map((w) => ({ tokens: w.tokens, start: w.start, pages: this.books.table(w.seq) })), this.pageSize);
    const r = await this.model.forward(b, this.caches, this.moe.routed);
    const ids = new Int32Array(work.length);
    this.k.argmax(ids, r.logits, work.length, this.model.c.vocab_size);
    return Array.from(ids);
  }

  release(seq: string): void {
    this.books.release(seq);
  }
}

/** The same steps through the actors of a scaling config (kernels run in their workers, so
 * only the whole step is timed here). */
class ActorStepper implements Stepper {
  readonly books: BlockManager;
  private static readonly greedy = { temperature: 0, top_p: 1, top_k: 0, min_p: 0, presence_penalty: 0, frequency_penalty: 0, repetition_penalty: 1, u: 0, logprobs: null, output: [] };

  constructor(readonly backend: ModelBackend) {
    this.books = new BlockManager(backend.pages, backend.pageSize);
  }

  async step(work: { seq: string; tokens: number[]; start: number }[]): Promise<number[]> {
    for (const w of work) if (!this.books.grow(w.seq, w.start + w.tokens.length)) throw new Error("bench: KV cache full");
    const res = await this.backend.step(0, work.map((w) => ({ ...w, pages: this.books.table(w.seq), sample: ActorStepper.greedy })));
    return res.map((r) => r.sampled!.token);
  }

  release(seq: string): void {
    this.books.release(seq);
  }
}

/** Streaming read bandwidth: an F32 GEMV over a 1 GiB matrix (one FMA per 4 bytes, so memory-bound),
 * and single-threaded copy bandwidth (moe_memcpy_d2d is memmove). Best of `reps`. */
function measureBandwidth(k: Kernels, reps: number): { read_gbs: number; copy_gbs: number } {
  const K = 4096, N = (1 << 30) / 4 / K;
  const w = new Float32Array(N * K);
  for (let i = 0; i < w.length; i += 1024) w[i] = 1; // touch every page
  const x = new Float32Array(K).fill(1), out = new Float32Array(N);
  const weight = { name: "bw", dtype: 0 as const, data: new Uint8Array(w.buffer), scale: null, shape: [N, K] };
  let read = 0, copy = 0;
  for (let r = 0; r < reps + 1; r++) {
    const t0 = performance.now();
    k.linear(out, x, weight, 1);
    const s = (performance.now() - t0) / 1e3;
    if (r > 0) read = Math.max(read, w.byteLength / s / 1e9);
  }
  const half = w.byteLength / 2, src = new Uint8Array(w.buffer, 0, half), dst = new Uint8Array(w.buffer, half, half);
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    dst.set(src);
    copy = Math.max(copy, (2 * half) / ((performance.now() - t0) / 1e3) / 1e9);
  }
  return { read_gbs: read, copy_gbs: copy };
}

/** Deterministic pseudo-random prompt tokens (a different prompt per seed). */
const rand = (n: number, V: number, seed: number) => Array.from({ length: n }, (_, i) => (Math.imul(i + 1 + seed * 7919, 2654435761) >>> 0) % V);

interface Timing { ms: number; kernelMs: number; tokens: number; stepMs?: number[] }
const rate = (t: Timing) => (t.tokens / t.ms) * 1e3;
/** Tokens/s of the median decode step: this shared machine's neighbours slow some steps by 2x,
 * which moves the mean but not the median (both are printed). */
const medianRate = (t: Timing, batch: number) => {
  const s = [...(t.stepMs ?? [])].sort((a, b) => a - b);
  return s.length ? (batch * 1e3) / s[s.length >> 1] : NaN;
};

async function main() {
  const values = parseOrExit(process.argv.slice(2), BENCH, (v) => {
    if (!v.model) throw new UsageError("--model DIR is required");
    if (v.speculative !== undefined && v.speculative !== "mtp") throw new UsageError(`--speculative ${v.speculative}: only "mtp" is supported`);
  });
  const reps = Number(values.reps), steps = Number(values.steps);
  const base = cpuKernels();
  const threads = base.threads(values.threads ? Number(values.threads) : 0);
  const clock = { ms: 0, by: new Map<string, number>() };
  const ck = openCheckpoint(values.model!);
  const V = ck.config.vocab_size;
  const pageSize = 64;
  const actors = values.scaling ? await createBackend({ model: values.model!, scaling: values.scaling, pages: 512, pageSize }) : null;
  const st: Stepper = actors ? new ActorStepper(actors) : new DirectStepper(ck, timedKernels(base, clock), 512, pageSize);
  const log = (...a: unknown[]) => { if (!values.json) console.log(...a); };

  let nseq = 0;
  const timed = async (tokens: number, f: () => Promise<void>): Promise<Timing> => {
    Bun.gc(true); // garbage of an earlier phase (a 512-token prefill's buffers) is not this phase's cost
    const k0 = clock.ms, t0 = performance.now();
    await f();
    return { ms: performance.now() - t0, kernelMs: clock.ms - k0, tokens };
  };
  const prefill = async (n: number, seq: string, chunk = 512) => {
    const toks = rand(n, V, nseq);
    let next = 0;
    for (let s = 0; s < n; s += chunk) [next] = await st.step([{ seq, tokens: toks.slice(s, s + chunk), start: s }]);
    return next;
  };
  const best = (ts: Timing[]) => ts.reduce((a, b) => (rate(b) > rate(a) ? b : a));
  const prefillRun = async (n: number) => {
    const ts: Timing[] = [];
    for (let r = 0; r < reps; r++) {
      const seq = `p${nseq++}`;
      ts.push(await timed(n, () => prefill(n, seq).then(() => {})));
      st.release(seq);
    }
    return best(ts);
  };
  /** Decodes `steps` tokens for `batch` sequences that already hold `depth` positions. */
  const decodeRun = async (batch: number, depth: number, passes: number) => {
    const seqs = Array.from({ length: batch }, () => `d${nseq++}`);
    const next: number[] = [];
    for (const s of seqs) next.push(await prefill(depth, s));
    let pos = depth;
    const ts: Timing[] = [], stepMs: number[] = [];
    clock.by.clear();
    for (let r = 0; r < passes; r++) {
      ts.push(await timed(batch * steps, async () => {
        for (let i = 0; i < steps; i++, pos++) {
          const t0 = performance.now();
          const out = await st.step(seqs.map((seq, j) => ({ seq, tokens: [next[j]], start: pos })));
          stepMs.push(performance.now() - t0);
          out.forEach((t, j) => (next[j] = t));
        }
      }));
    }
    for (const s of seqs) st.release(s);
    return { ...best(ts), stepMs };
  };

  const params = paramCount(ck);
  log(`bench: ${values.model} (${(params / 1e6).toFixed(1)}M parameters), ${threads} threads, best of ${reps}, ${steps} decode steps per pass`);
  await prefillRun(128); // warm-up: maps pages, fills caches
  const none: Timing = { ms: 1, kernelMs: 0, tokens: 0 };
  const p128 = values.quick ? none : await prefillRun(128);
  log(`prefill 128: ${rate(p128).toFixed(1)} tok/s`);
  const p512 = values.quick ? none : await prefillRun(512);
  log(`prefill 512: ${rate(p512).toFixed(1)} tok/s`);
  const d1 = await decodeRun(1, 128, reps);
  if (values.profile) { // per-kernel ms per decode step 
    const per = [...clock.by].sort((a, b) => b[1] - a[1]).map(([n, ms]) => `${n} ${(ms / (reps * steps)).toFixed(3)}`);
    log(`kernel ms per b1 step: ${per.join(", ")}`);
  }
  log(`decode b1 @128: ${rate(d1).toFixed(1)} tok/s (${(d1.ms / steps).toFixed(2)} ms/step, kernels ${((100 * d1.kernelMs) / d1.ms).toFixed(1)}%); median step ${medianRate(d1, 1).toFixed(1)} tok/s`);
  const dd = values["no-depth"] || values.quick ? null : await decodeRun(1, 1024, reps);
  if (dd) log(`decode b1 @1024: ${rate(dd).toFixed(1)} tok/s`);
  const d8 = values.quick ? none : await decodeRun(8, 128, reps);
  log(`decode b8 @128: ${rate(d8).toFixed(1)} tok/s`);
  const bpt = bytesPerToken(ck);
  const achieved = (bpt.total * rate(d1)) / 1e9;
  const peak = process.resourceUsage().maxRSS / 1024; // KiB on Linux; before the 1 GiB bandwidth buffer
  const bw = values.quick ? { read_gbs: NaN, copy_gbs: NaN } : measureBandwidth(base, 3);
  log(`memory bandwidth: read ${bw.read_gbs.toFixed(1)} GB/s (F32 GEMV, ${threads} threads), copy ${bw.copy_gbs.toFixed(1)} GB/s (1 thread)`);
  log(`weights read per token: ${(bpt.total / 1e6).toFixed(1)} MB`, Object.fromEntries(Object.entries(bpt.parts).map(([n, b]) => [n, +(b / 1e6).toFixed(2)])));
  log(`decode streams ${achieved.toFixed(1)} GB/s = ${((100 * achieved) / bw.read_gbs).toFixed(0)}% of measured read bandwidth`);
  log(`runtime (non-kernel) share of a b1 decode step: ${((100 * (d1.ms - d1.kernelMs)) / d1.ms).toFixed(1)}%; peak RSS ${peak.toFixed(0)} MB`);
  await actors?.close();
  // Speculative decoding with the MTP module: batch-1 greedy decode with and without it.
  const spec = values.speculative === "mtp"
    ? await measureSpeculative(values.model!, {
      k: Number(values["draft-tokens"]), tokens: 128,
      backend: (kvTokens) => createBackend({ model: values.model!, scaling: values.scaling ?? "direct", mtp: true, kvTokens }),
    })
    : null;
  if (spec) log(`speculative mtp k=${spec.k}: acceptance ${spec.mtp_acceptance.toFixed(3)}, ${spec.decode_tok_s.toFixed(1)} tok/s vs ${spec.decode_tok_s_no_speculation.toFixed(1)} without (identical tokens: ${spec.identical})`);
  if (values.json)
    console.log(JSON.stringify({
      ...(spec ? { speculative: "mtp", draft_tokens: spec.k, mtp_acceptance: spec.mtp_acceptance, mean_accepted_length: spec.mean_accepted_length,
        decode_tok_s_no_speculation: spec.decode_tok_s_no_speculation, decode_tok_s_speculative: spec.decode_tok_s, speculative_identical: spec.identical } : {}),
      scaling: values.scaling ?? "direct",
      model: values.model, params, threads, isa: process.env.MOE_CPU_ISA ?? "auto",
      prefill128_tok_s: rate(p128), prefill512_tok_s: rate(p512), decode_tok_s: rate(d1),
      decode_depth1024_tok_s: dd ? rate(dd) : null, decode_batch8_tok_s: rate(d8), peak_rss_mb: peak,
      decode_step_ms: d1.ms / steps, decode_runtime_share: (d1.ms - d1.kernelMs) / d1.ms,
      decode_median_step_tok_s: medianRate(d1, 1), decode_depth1024_median_step_tok_s: dd ? medianRate(dd, 1) : null,
      decode_batch8_median_step_tok_s: medianRate(d8, 8),
      weight_bytes_per_token: bpt.total, weight_bytes_parts: bpt.parts,
      bandwidth_read_gbs: bw.read_gbs, bandwidth_copy_gbs: bw.copy_gbs,
      decode_achieved_gbs: achieved, decode_bandwidth_fraction: achieved / bw.read_gbs,
      ...(spec ? { decode_tok_s: spec.decode_tok_s } : {}),
    }));
}

if (import.meta.main) await main();
