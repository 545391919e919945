// The kernels as a typed interface, and its implementation over the dlopen table: every status
// is checked and turned into a KernelError carrying the library's own message.
import { ptr } from "bun:ffi";
import type { Weight } from "../checkpoint/checkpoint.ts";
import { type Backend, type KernelSymbols, openLibrary } from "./ffi.ts";

export class KernelError extends Error {
  constructor(readonly kernel: string, readonly status: number, message: string) {
    super(`${kernel} failed (status ${status}): ${message}`);
    this.name = "KernelError";
  }
}

type F32 = Float32Array;
type I32 = Int32Array;

/** One expert's three projections (w1 = gate_proj, w3 = up_proj, w2 = down_proj). */
export interface ExpertWeights {
  readonly w1: Weight;
  readonly w3: Weight;
  readonly w2: Weight;
}

/** Tokens grouped by local expert: rows[offsets[e]..offsets[e+1]) with routing weights rw. */
export interface ExpertGroups {
  readonly offsets: I32; // [E+1]
  readonly rows: I32; // token index into x/out
  readonly rw: F32; // routing weight per row
}

export interface Kernels {
  readonly backend: Backend;
  threads(n?: number): number;
  linear(out: F32, x: F32, w: Weight, T: number, o?: { ldo?: number; ldx?: number; row0?: number; N?: number; K?: number }): void;
  rmsnorm(out: F32, x: F32, w: Weight, T: number, D: number, eps: number, o?: { ldo?: number; ldx?: number }): void;
  embed(out: F32, ids: I32, table: Weight, T: number): void;
  rope(x: F32, positions: I32, invFreq: F32, T: number, g: { ldToken: number; ldHead: number; heads: number; offset: number; ropeDim: number }): void;
  siluMul(out: F32, g: F32, u: F32, T: number, I: number, o?: { ldo?: number; ldg?: number; ldu?: number }): void;
  add(y: F32, x: F32, T: number, D: number, alpha?: number): void;
  gate(ids: I32, weights: F32, x: F32, w: Weight, bias: F32 | null, T: number, g: GateShape): void;
  experts(out: F32, x: F32, groups: ExpertGroups, experts: readonly (ExpertWeights | null)[], T: number, D: number, I: number): void;
  kvWrite(cache: KvCacheArrays, latent: F32, ldLatent: number, pe: F32, ldPe: number, slots: I32, T: number, C: number, dr: number): void;
  kvGather(latent: F32, pe: F32, cache: KvCacheArrays, blockTable: I32, L: number, C: number, dr: number, pageSize: number): void;
  mlaAbsorbQ(qLat: F32, q: F32, wkvb: Weight, T: number, s: MlaShape): void;
  mlaAbsorbOut(out: F32, oLat: F32, wkvb: Weight, T: number, s: MlaShape): void;
  mlaAttend(oLat: F32, qLat: F32, q: F32, cache: KvCacheArrays, b: AttendBatch, s: MlaShape, scale: number): void;
  mlaAttendNaive(out: F32, q: F32, kv: F32, kPe: F32, T: number, L: number, qPos0: number, s: MlaShape, scale: number): void;
  argmax(ids: I32, logits: F32, T: number, V: number): void;
  logSoftmax(out: F32, logits: F32, T: number, V: number): void;
  sample(logits: F32, V: number, p: { temperature: number; topK: number; topP: number; minP: number; u: number }): number;
}

export interface GateShape {
  D: number; E: number; nGroup: number; topkGroup: number; k: number;
  scoreFunc: "sigmoid" | "softmax"; normTopk: boolean; routeScale: number;
}
export interface MlaShape { H: number; C: number; dn: number; dr: number; dv: number }

/** The dtypes a paged latent cache is stored in (kernels/include/moe_kvcache.h). */
export type KvDtype = "f32" | "bf16" | "fp8";
/** The ABI's moe_dtype of each (MOE_F32, MOE_BF16, MOE_F8E4M3). */
export const KV_DTYPE_CODE: Readonly<Record<KvDtype, number>> = { f32: 0, bf16: 1, fp8: 2 };
/** A paged latent cache as the kernels take it: rows of latent (kv) and rope key (pe) in the
 * cache's dtype, and for fp8 one f32 scale per row and 128-channel tile. */
export interface KvCacheArrays {
  readonly dtype: KvDtype;
  readonly kv: Float32Array | Uint16Array | Uint8Array; // [rows, C]
  readonly pe: Float32Array | Uint16Array; // [rows, dr]
  readonly scale: Float32Array | null; // [rows, ceil(C / 128)] (fp8)
}
export interface AttendBatch {
  blockTables: I32; maxBlocks: number; cuQ: I32; ctxLen: I32; S: number; pageSize: number;
}

function cols(w: Weight): number {
  return w.shape[w.shape.length - 1];
}

/** Rows of a paged latent cache (n_pages * page_size), from the arrays themselves (their lengths
 * count elements of the cache's dtype): the kernels refuse any slot or page outside it instead
 * of writing past the cache. */
export function cacheSlots(c: KvCacheArrays, C: number, dr: number): number {
  let n = Math.min(Math.floor(c.kv.length / C), dr > 0 ? Math.floor(c.pe.length / dr) : Number.MAX_SAFE_INTEGER);
  if (c.dtype === "fp8") n = Math.min(n, Math.floor((c.scale?.length ?? 0) / Math.ceil(C / 128)));
  return n;
}

/** Checks that a cache's arrays are of its dtype (a bf16 cache of Float32Arrays would be read
 * as half its rows, twice), and returns its ABI code. */
export function kvDtypeCode(c: KvCacheArrays): number {
  const ok = c.dtype === "f32" ? c.kv instanceof Float32Array && c.pe instanceof Float32Array
    : c.pe instanceof Uint16Array && (c.dtype === "bf16" ? c.kv instanceof Uint16Array : c.kv instanceof Uint8Array && c.scale instanceof Float32Array);
  if (!ok) throw new TypeError(`a ${c.dtype} KV cache has arrays of another dtype`);
  return KV_DTYPE_CODE[c.dtype];
}

export function createKernels(backend: Backend = "cpu"): Kernels {
  const lib = openLibrary(backend);
  const s: KernelSymbols = lib.symbols;
  const check = (name: string, st: number) => {
    if (st !== 0) throw new KernelError(name, st, String(s.moe_last_error()));
  };
  const one = new Int32Array(1);
  const tables = new WeakMap<readonly (ExpertWeights | null)[], BigUint64Array[]>();
  const pointerTable = (ws: readonly (Weight | null | undefined)[], pick: (w: Weight) => Uint8Array | Float32Array | null) => {
    const t = new BigUint64Array(Math.max(ws.length, 1));
    ws.forEach((w, i) => {
      const a = w ? pick(w) : null;
      t[i] = a && a.byteLength > 0 ? BigInt(ptr(a)) : 0n;
    });
    return t;
  };
  const k: Kernels = {
    backend,
    threads(n) {
      if (n !== undefined) check("moe_set_threads", s.moe_set_threads(n));
      return s.moe_get_threads();
    },
    linear(out, x, w, T, o = {}) {
      const K = o.K ?? cols(w), N = o.N ?? w.shape[0];
      check("moe_linear", s.moe_linear(out, o.ldo ?? N, x, o.ldx ?? K, w.data, w.scale, w.dtype, o.row0 ?? 0, T, N, K, null));
    },
    rmsnorm(out, x, w, T, D, eps, o = {}) {
      check("moe_rmsnorm", s.moe_rmsnorm(out, o.ldo ?? D, x, o.ldx ?? D, w.data, w.dtype, T, D, eps, null));
    },
    embed(out, ids, table, T) {
      check("moe_embed", s.moe_embed(out, ids, table.data, table.dtype, T, table.shape[1], table.shape[0], null));
    },
    rope(x, positions, invFreq, T, g) {
      check("moe_rope", s.moe_rope(x, g.ldToken, g.ldHead, g.heads, g.offset, positions, invFreq, T, g.ropeDim, null));
    },
    siluMul(out, g, u, T, I, o = {}) {
      check("moe_silu_mul", s.moe_silu_mul(out, o.ldo ?? I, g, o.ldg ?? I, u, o.ldu ?? I, T, I, null));
    },
    add(y, x, T, D, alpha = 1) {
      check("moe_add", s.moe_add(y, D, x, D, alpha, T, D, null));
    },
    gate(ids, weights, x, w, bias, T, g) {
      check("moe_gate", s.moe_gate(ids, weights, x, g.D, w.data, w.dtype, bias, T, g.D, g.E, g.nGroup, g.topkGroup, g.k,
        g.scoreFunc === "sigmoid" ? 0 : 1, g.normTopk ? 1 : 0, g.routeScale, null));
    },
    experts(out, x, groups, experts, T, D, I) {
      // The six pointer tables depend only on the expert weights, which never move: build them
      // once per weights array (one per layer) rather than on every call.
      let t = tables.get(experts);
      if (!t) {
        const pick = (f: (e: ExpertWeights) => Weight) => experts.map((e) => (e ? f(e) : null));
        const data = (w: Weight) => w.data, scale = (w: Weight) => w.scale;
        t = [
          pointerTable(pick((e) => e.w1), data), pointerTable(pick((e) => e.w1), scale),
          pointerTable(pick((e) => e.w3), data), pointerTable(pick((e) => e.w3), scale),
          pointerTable(pick((e) => e.w2), data), pointerTable(pick((e) => e.w2), scale),
        ];
        tables.set(experts, t);
      }
      const dtype = experts.find((e) => e)?.w1.dtype ?? 0;
      check("moe_experts", s.moe_experts(out, D, x, D, groups.offsets, groups.rows, groups.rw,
        t[0], t[1], t[2], t[3], t[4], t[5], dtype, experts.length, D, I, null, null));
      void T;
    },
    kvWrite(c, latent, ldLatent, peIn, ldPe, slots, T, C, dr) {
      check("moe_kv_write", s.moe_kv_write(c.kv, c.pe, c.scale, kvDtypeCode(c), latent, ldLatent, peIn, ldPe, slots, T, C, dr,
        cacheSlots(c, C, dr), null));
    },
    kvGather(latent, pe, c, bt, L, C, dr, pageSize) {
      check("moe_kv_gather", s.moe_kv_gather(latent, pe, c.kv, c.pe, c.scale, kvDtypeCode(c), bt, L, C, dr, pageSize,
        cacheSlots(c, C, dr), null));
    },
    mlaAbsorbQ(qLat, q, w, T, m) {
      check("moe_mla_absorb_q", s.moe_mla_absorb_q(qLat, q, w.data, w.scale, w.dtype, T, m.H, m.dn, m.dr, m.dv, m.C, null));
    },
    mlaAbsorbOut(out, oLat, w, T, m) {
      check("moe_mla_absorb_out", s.moe_mla_absorb_out(out, oLat, w.data, w.scale, w.dtype, T, m.H, m.dn, m.dv, m.C, null));
    },
    mlaAttend(oLat, qLat, q, c, b, m, scale) {
      check("moe_mla_attend", s.moe_mla_attend(oLat, qLat, q, c.kv, c.pe, c.scale, kvDtypeCode(c), b.blockTables, b.maxBlocks,
        b.cuQ, b.ctxLen, b.S, m.H, m.C, m.dn, m.dr, b.pageSize, cacheSlots(c, m.C, m.dr), scale, null));
    },
    mlaAttendNaive(out, q, kv, kPe, T, L, qPos0, m, scale) {
      check("moe_mla_attend_naive", s.moe_mla_attend_naive(out, q, kv, kPe, T, L, qPos0, m.H, m.dn, m.dr, m.dv, scale, null));
    },
    argmax(ids, logits, T, V) {
      check("moe_argmax", s.moe_argmax(ids, logits, T, V, null));
    },
    logSoftmax(out, logits, T, V) {
      check("moe_log_softmax", s.moe_log_softmax(out, logits, T, V, null));
    },
    sample(logits, V, p) {
      check("moe_sample", s.moe_sample(one, logits, V, p.temperature, p.topK, p.topP, p.minP, p.u, null, null));
      return one[0];
    },
  };
  return k;
}

let shared: Kernels | null = null;
/** The process-wide CPU kernels (one dlopen per JS thread). */
export function cpuKernels(): Kernels {
  if (!shared) {
    shared = createKernels("cpu");
    shared.threads(Number(process.env.MOE_THREADS ?? 0));
  }
  return shared;
}
