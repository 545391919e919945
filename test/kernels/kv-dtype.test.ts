// The compact latent cache (issue 15): moe_kv_write rounds to bf16 / fp8 exactly as stated
// (include/moe_kvcache.h), the same bytes on every ISA path; moe_kv_gather and moe_mla_attend
// read it back converting on the fly. Tolerances, |got - ref| <= abs + rel*|ref|:
// - stored values against the f32 latent: bf16 rel 2^-8 (half an ulp of 7 stored bits), abs 0;
//   fp8 rel 2^-4 (half an ulp of 3 bits), abs 2^-10 * the tile's scale (half the smallest
//   subnormal step); the rope key of an fp8 cache is bf16;
// - attention over a compact cache against a float64 reference over the values it stores: the f32
//   cache's own tolerance (2e-6 * max|ref| abs, 1e-5 rel): the kernels convert, nothing else;
// - attention over a compact cache against the f32 cache's output: bf16 2e-2 * max|ref| abs +
//   1e-2 rel, fp8 1e-1 * max|ref| abs + 5e-2 rel (what the rounding of the keys and values costs
//   on random data whose scores spread over a few units).
import { describe, expect, test } from "bun:test";
import { bf16, check, e4m3, expectClose, ISAS, k, randF32, useIsa } from "./helpers.ts";

const F32 = 0, BF16 = 1, FP8 = 2;
const DTYPES = [BF16, FP8] as const;
const tiles = (C: number) => Math.ceil(C / 128);

/** A cache of `rows` slots in a dtype: raw arrays as the ABI takes them. */
function cache(dtype: number, rows: number, C: number, dr: number) {
  return {
    kv: dtype === F32 ? new Float32Array(rows * C) : dtype === BF16 ? new Uint16Array(rows * C) : new Uint8Array(rows * C),
    pe: dtype === F32 ? new Float32Array(rows * dr) : new Uint16Array(rows * dr),
    scale: dtype === FP8 ? new Float32Array(rows * tiles(C)) : null,
  };
}
type Cache = ReturnType<typeof cache>;

/** Stored value of latent element (slot, c) and rope element (slot, i), in float64. */
function latentAt(c: Cache, dtype: number, C: number, slot: number, i: number): number {
  if (dtype === F32) return c.kv[slot * C + i];
  if (dtype === BF16) return bf16(c.kv[slot * C + i]);
  return e4m3(c.kv[slot * C + i]) * c.scale![slot * tiles(C) + Math.floor(i / 128)];
}
function ropeAt(c: Cache, dtype: number, dr: number, slot: number, i: number): number {
  return dtype === F32 ? c.pe[slot * dr + i] : bf16(c.pe[slot * dr + i]);
}

/** Rows of varied magnitude (2^-spread .. 2^spread, so tile scales differ row to row), one
 * all-zero row and tiny values. */
function latents(T: number, ld: number, seed: number, spread = 6): Float32Array {
  const x = randF32(T * ld, seed);
  for (let t = 0; t < T; t++) for (let i = 0; i < ld; i++) x[t * ld + i] *= 2 ** ((t % (2 * spread + 1)) - spread) * (i % 17 === 0 ? 1e-3 : 1);
  x.fill(0, 0, ld);
  return x;
}

/** Nearest representable value, ties to the even code, from an explicit list (independent of the C). */
function nearest(v: number, values: number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) {
    const d = Math.abs(values[i] - v) - Math.abs(values[best] - v);
    if (d < 0 || (d === 0 && i % 2 === 0)) best = i;
  }
  return values[best];
}
/** f32 -> bf16 value: the nearer of the two neighbours, ties to the even one. */
function bf16Nearest(v: number): number {
  const u = new Uint32Array(new Float32Array([v]).buffer)[0] >>> 16, lo = bf16(u), hi = bf16(u + 1), x = Math.fround(v);
  const dl = Math.abs(x - lo), dh = Math.abs(hi - x);
  return dl < dh ? lo : dl > dh ? hi : u & 1 ? hi : lo;
}
const E4M3 = Array.from({ length: 127 }, (_, code) => e4m3(code)); // 0 .. 448, ascending

describe("moe_kv_write rounding", () => {
  const T = 26, C = 200, dr = 12, ld = C + dr + 1, x = latents(T, ld, 3);
  const slots = Int32Array.from({ length: T }, (_, t) => (t * 5) % T);

  test("bf16 rounds to nearest even, latent and rope key", () => {
    const c = cache(BF16, T, C, dr);
    check("kv_write", k.moe_kv_write(c.kv, c.pe, null, BF16, x, ld, x.subarray(C), ld, slots, T, C, dr, T, null));
    for (let t = 0; t < T; t++)
      for (let i = 0; i < C + dr; i++) {
        const v = x[t * ld + i], want = bf16Nearest(v);
        const got = i < C ? latentAt(c, BF16, C, slots[t], i) : ropeAt(c, BF16, dr, slots[t], i - C);
        if (got !== want) throw new Error(`row ${t} elem ${i}: ${got}, want ${want} (from ${v})`);
      }
  });

  test("fp8: power-of-two tile scales with amax <= 448 * scale, e4m3 nearest even, rope key bf16", () => {
    const c = cache(FP8, T, C, dr);
    check("kv_write", k.moe_kv_write(c.kv, c.pe, c.scale, FP8, x, ld, x.subarray(C), ld, slots, T, C, dr, T, null));
    for (let t = 0; t < T; t++)
      for (let b = 0; b < tiles(C); b++) {
        const row = x.subarray(t * ld + b * 128, t * ld + Math.min(C, (b + 1) * 128));
        const amax = row.reduce((m, v) => Math.max(m, Math.abs(v)), 0), s = c.scale![slots[t] * tiles(C) + b];
        expect(Number.isInteger(Math.log2(s))).toBe(true);
        if (amax === 0) expect(s).toBe(1);
        else expect(amax <= 448 * s && amax > 224 * s).toBe(true);
        row.forEach((v, j) => {
          const got = latentAt(c, FP8, C, slots[t], b * 128 + j), want = Math.sign(v) * nearest(Math.abs(v) / s, E4M3) * s;
          if (got !== want) throw new Error(`row ${t} elem ${b * 128 + j}: ${got}, want ${want} (from ${v}, scale ${s})`);
        });
      }
    for (let t = 0; t < T; t++) for (let i = 0; i < dr; i++) expect(ropeAt(c, FP8, dr, slots[t], i)).toBe(bf16Nearest(x[t * ld + C + i]));
  });

  test("every ISA path stores the same bytes", () => {
    for (const dtype of DTYPES) {
      const ref = cache(dtype, T, C, dr);
      for (const isa of ISAS) {
        useIsa(isa);
        const c = cache(dtype, T, C, dr);
        check("kv_write", k.moe_kv_write(c.kv, c.pe, c.scale, dtype, x, ld, x.subarray(C), ld, slots, T, C, dr, T, null));
        if (isa === ISAS[0]) { ref.kv.set(c.kv as never); ref.pe.set(c.pe as never); ref.scale?.set(c.scale!); }
        expect(Buffer.compare(Buffer.from(c.kv.buffer), Buffer.from(ref.kv.buffer))).toBe(0);
        expect(Buffer.compare(Buffer.from(c.pe.buffer), Buffer.from(ref.pe.buffer))).toBe(0);
      }
    }
  });

  test("gather converts back: within the stated tolerance of the f32 latent", () => {
    const L = T, bt = Int32Array.from([0, 1, 2, 3, 4, 5, 6]), ps = 4;
    const seq = Int32Array.from({ length: L }, (_, p) => p); // positions in order
    for (const dtype of DTYPES) {
      const c = cache(dtype, 28, C, dr);
      check("kv_write", k.moe_kv_write(c.kv, c.pe, c.scale, dtype, x, ld, x.subarray(C), ld, seq, T, C, dr, 28, null));
      const lat = new Float32Array(L * C), pe = new Float32Array(L * dr);
      check("kv_gather", k.moe_kv_gather(lat, pe, c.kv, c.pe, c.scale, dtype, bt, L, C, dr, ps, 28, null));
      for (let p = 0; p < L; p++) {
        const want = x.subarray(p * ld, p * ld + C);
        if (dtype === BF16) expectClose(lat.subarray(p * C, (p + 1) * C), want, 0, 2 ** -8, `bf16 row ${p}`);
        else for (let b = 0; b < tiles(C); b++) {
          const s = c.scale![p * tiles(C) + b], hi = Math.min(C, (b + 1) * 128);
          expectClose(lat.subarray(p * C + b * 128, p * C + hi), want.subarray(b * 128, hi), 2 ** -10 * s, 2 ** -4, `fp8 row ${p} tile ${b}`);
        }
        expectClose(pe.subarray(p * dr, (p + 1) * dr), x.subarray(p * ld + C, p * ld + C + dr), 0, 2 ** -8, `rope row ${p}`);
      }
    }
  });
});

describe("moe_mla_attend over a compact cache", () => {
  // H = 9: head groups of 8 and 1 (wide and narrow matmul tiles); C = 200: a full and a partial
  // fp8 tile; shuffled pages with a run of consecutive ones; decode and prefill rows; rows of
  // magnitudes 1/4 .. 4 (scores spread over about a unit, as a trained model's do).
  const H = 9, C = 200, dn = 8, dr = 6, ps = 16, sm = 0.02;
  const ctx = [1, 37, 70], nq = [1, 3, 1], T = 5, maxBlocks = Math.ceil(70 / ps), pages = 3 * maxBlocks + 110;
  const order = Array.from({ length: pages }, (_, i) => (i >= 5 && i < 10 ? i + 100 : (i * 7) % pages));
  const bt = Int32Array.from({ length: 3 * maxBlocks }, (_, i) => order[i]);
  const cuQ = Int32Array.from([0, 1, 4, 5]), ctxLen = Int32Array.from(ctx), rows = pages * ps;
  const ld = C + dr, x = latents(rows, ld, 21, 2), all = Int32Array.from({ length: rows }, (_, i) => i);
  const qLat = randF32(T * H * C, 23), q = randF32(T * H * (dn + dr), 24);

  function written(dtype: number): Cache {
    const c = cache(dtype, rows, C, dr);
    check("kv_write", k.moe_kv_write(c.kv, c.pe, c.scale, dtype, x, ld, x.subarray(C), ld, all, rows, C, dr, rows, null));
    return c;
  }
  function attend(c: Cache, dtype: number): Float32Array {
    const out = new Float32Array(T * H * C).fill(NaN);
    check("mla_attend", k.moe_mla_attend(out, qLat, q, c.kv, c.pe, c.scale, dtype, bt, maxBlocks, cuQ, ctxLen, 3, H, C, dn, dr, ps, rows, sm, null));
    return out;
  }
  /** float64 attention over the values the cache holds. */
  function reference(c: Cache, dtype: number): Float64Array {
    const ref = new Float64Array(T * H * C);
    for (let s = 0; s < 3; s++)
      for (let j = 0; j < nq[s]; j++) {
        const t = cuQ[s] + j, pos = ctx[s] - nq[s] + j;
        const slot = (i: number) => bt[s * maxBlocks + Math.floor(i / ps)] * ps + (i % ps);
        for (let h = 0; h < H; h++) {
          const sc: number[] = [];
          for (let i = 0; i <= pos; i++) {
            let d = 0;
            for (let cc = 0; cc < C; cc++) d += qLat[(t * H + h) * C + cc] * latentAt(c, dtype, C, slot(i), cc);
            for (let cc = 0; cc < dr; cc++) d += q[(t * H + h) * (dn + dr) + dn + cc] * ropeAt(c, dtype, dr, slot(i), cc);
            sc.push(d * sm);
          }
          const m = Math.max(...sc), e = sc.map((v) => Math.exp(v - m)), z = e.reduce((a, b) => a + b, 0);
          for (let i = 0; i <= pos; i++)
            for (let cc = 0; cc < C; cc++) ref[(t * H + h) * C + cc] += (e[i] / z) * latentAt(c, dtype, C, slot(i), cc);
        }
      }
    return ref;
  }
  const maxAbs = (a: ArrayLike<number>) => {
    let m = 0;
    for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
    return m;
  };
  const f32Out = (() => { useIsa(ISAS[0]); return attend(written(F32), F32); })();

  for (const dtype of DTYPES) {
    const c = written(dtype), ref = reference(c, dtype);
    for (const isa of ISAS)
      test(`${dtype === BF16 ? "bf16" : "fp8"} on ${isa}: the stored values exactly, the f32 cache within tolerance`, () => {
        useIsa(isa);
        const out = attend(c, dtype);
        expectClose(out, ref, 2e-6 * maxAbs(ref), 1e-5, `${isa} attend over the stored values`);
        const [a, r] = dtype === BF16 ? [2e-2, 1e-2] : [1e-1, 5e-2];
        expectClose(out, f32Out, a * maxAbs(f32Out), r, `${isa} attend vs the f32 cache`);
      }, 60_000);
  }
});

describe("a compact cache keeps the bounds and argument checks", () => {
  const C = 8, dr = 4, ps = 4, n = 12, EINVAL = 1;
  const lat = Float32Array.from({ length: 2 * (C + dr) }, (_, i) => i + 1);

  for (const dtype of DTYPES)
    test(`${dtype === BF16 ? "bf16" : "fp8"}: a slot past the cache writes nothing, a page past it is refused`, () => {
      const c = cache(dtype, n, C, dr);
      expect(k.moe_kv_write(c.kv, c.pe, c.scale, dtype, lat, C + dr, lat.subarray(C), C + dr, Int32Array.from([1, n]), 2, C, dr, n, null)).toBe(EINVAL);
      expect(String(k.moe_last_error())).toBe(`moe_kv_write: slot ${n} outside the KV cache [0, ${n})`);
      expect(c.kv.every((v) => v === 0) && c.pe.every((v) => v === 0) && (c.scale?.every((v) => v === 0) ?? true)).toBe(true);
      const out = new Float32Array(8 * C), outPe = new Float32Array(8 * dr);
      expect(k.moe_kv_gather(out, outPe, c.kv, c.pe, c.scale, dtype, Int32Array.from([0, 3]), ps + 1, C, dr, ps, n, null)).toBe(EINVAL);
      expect(String(k.moe_last_error())).toBe(`moe_kv_gather: page 3 outside the KV cache of 3 pages`);
      const H = 2, dn = 3, oLat = new Float32Array(H * C), qLat = new Float32Array(H * C), q = new Float32Array(H * (dn + dr));
      expect(k.moe_mla_attend(oLat, qLat, q, c.kv, c.pe, c.scale, dtype, Int32Array.from([0, 7]), 2, Int32Array.from([0, 1]),
        Int32Array.from([ps + 2]), 1, H, C, dn, dr, ps, n, 0.5, null)).toBe(EINVAL);
      expect(String(k.moe_last_error())).toBe(`moe_mla_attend: page 7 outside the KV cache of 3 pages`);
    });

  test("fp8 without scales and an unknown dtype are refused", () => {
    const c = cache(FP8, n, C, dr), slots = Int32Array.from([0]);
    expect(k.moe_kv_write(c.kv, c.pe, null, FP8, lat, C + dr, lat.subarray(C), C + dr, slots, 1, C, dr, n, null)).toBe(EINVAL);
    expect(String(k.moe_last_error())).toBe("moe_kv_write: an MOE_F8E4M3 cache needs kv_scale");
    expect(k.moe_kv_write(c.kv, c.pe, c.scale, 7, lat, C + dr, lat.subarray(C), C + dr, slots, 1, C, dr, n, null)).toBe(EINVAL);
    expect(String(k.moe_last_error())).toBe("moe_kv_write: kv_dtype 7 is not MOE_F32, MOE_BF16 or MOE_F8E4M3");
  });
});
