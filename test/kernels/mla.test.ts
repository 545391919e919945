// MLA kernels on every ISA path against float64 JS references written from the definitions in
// moe_kernels.h: kv_b absorption into the query and the output (each dtype; 153 x 200 weights
// with partial 128-blocks in both directions), absorbed attention over a paged cache (several
// sequences, shuffled pages, several queries per sequence, H not a multiple of the head group,
// C not a multiple of 16) and the naive expanded attention (query blocks, causal offsets).
// Tolerance: |out - ref| <= 2e-6 * max|ref| + 1e-5 * |ref|.
import { describe, test } from "bun:test";
import { check, DTYPES, expectClose, ISAS, k, randF32, randWeight, useIsa } from "./helpers.ts";

const close = (got: Float32Array, ref: Float64Array, what: string) =>
  expectClose(got, ref, 2e-6 * ref.reduce((m, v) => Math.max(m, Math.abs(v)), 0), 1e-5, what);

function softmax(p: number[]): number[] {
  const m = Math.max(...p), e = p.map((v) => Math.exp(v - m)), z = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / z);
}

describe("MLA absorb", () => {
  const H = 9, dn = 10, dr = 4, dv = 7, C = 200;
  for (const isa of ISAS)
    for (const dtype of DTYPES)
      for (const T of [1, 2, 3, 8]) // 1-2 rows take the wide NN tiles
      test(`${isa} dtype ${dtype} T${T}`, () => {
        useIsa(isa);
        const w = randWeight(dtype, H * (dn + dv), C, 11, 3);
        const q = randF32(T * H * (dn + dr), 12);
        const qLat = new Float32Array(T * H * C);
        check("absorb_q", k.moe_mla_absorb_q(qLat, q, w.bytes, w.scale, dtype, T, H, dn, dr, dv, C, null));
        const refQ = new Float64Array(T * H * C);
        for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) for (let c = 0; c < C; c++) {
          let s = 0;
          for (let d = 0; d < dn; d++) s += q[(t * H + h) * (dn + dr) + d] * w.value(h * (dn + dv) + d, c);
          refQ[(t * H + h) * C + c] = s;
        }
        close(qLat, refQ, `${isa} absorb_q dtype ${dtype}`);
        const oLat = randF32(T * H * C, 13);
        const out = new Float32Array(T * H * dv);
        check("absorb_out", k.moe_mla_absorb_out(out, oLat, w.bytes, w.scale, dtype, T, H, dn, dv, C, null));
        const refO = new Float64Array(T * H * dv);
        for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) for (let v = 0; v < dv; v++) {
          let s = 0;
          for (let c = 0; c < C; c++) s += oLat[(t * H + h) * C + c] * w.value(h * (dn + dv) + dn + v, c);
          refO[t * H * dv + h * dv + v] = s;
        }
        close(out, refO, `${isa} absorb_out dtype ${dtype}`);
      });
});

describe("moe_mla_attend (paged, absorbed)", () => {
  const H = 5, C = 40, dn = 8, dr = 6, ps = 16, scale = 0.3;
  const ctx = [1, 37, 70], nq = [1, 3, 1];
  const maxBlocks = Math.ceil(70 / ps), pages = 3 * maxBlocks + 110;
  // shuffled page ids, except a run of consecutive ones (attended as one span)
  const order = Array.from({ length: pages }, (_, i) => (i >= 5 && i < 10 ? i + 100 : (i * 7) % pages));
  const bt = Int32Array.from({ length: 3 * maxBlocks }, (_, i) => order[i]);
  const cuQ = Int32Array.from([0, 1, 4, 5]), ctxLen = Int32Array.from(ctx);
  const T = 5;
  const kv = randF32(pages * ps * C, 21), pe = randF32(pages * ps * dr, 22);
  const qLat = randF32(T * H * C, 23), q = randF32(T * H * (dn + dr), 24);
  const ref = new Float64Array(T * H * C);
  for (let s = 0; s < 3; s++)
    for (let j = 0; j < nq[s]; j++) {
      const t = cuQ[s] + j, pos = ctx[s] - nq[s] + j;
      const slot = (i: number) => bt[s * maxBlocks + Math.floor(i / ps)] * ps + (i % ps);
      for (let h = 0; h < H; h++) {
        const sc: number[] = [];
        for (let i = 0; i <= pos; i++) {
          let d = 0;
          for (let c = 0; c < C; c++) d += qLat[(t * H + h) * C + c] * kv[slot(i) * C + c];
          for (let c = 0; c < dr; c++) d += q[(t * H + h) * (dn + dr) + dn + c] * pe[slot(i) * dr + c];
          sc.push(d * scale);
        }
        const p = softmax(sc);
        for (let i = 0; i <= pos; i++) for (let c = 0; c < C; c++) ref[(t * H + h) * C + c] += p[i] * kv[slot(i) * C + c];
      }
    }
  for (const isa of ISAS)
    test(isa, () => {
      useIsa(isa);
      const out = new Float32Array(T * H * C).fill(NaN);
      check("mla_attend", k.moe_mla_attend(out, qLat, q, kv, pe, null, 0, bt, maxBlocks, cuQ, ctxLen, 3, H, C, dn, dr, ps, pages * ps, scale, null));
      close(out, ref, `${isa} attend`);
    });
});

describe("moe_mla_attend_naive", () => {
  const T = 11, L = 40, q0 = 29, H = 3, dn = 12, dr = 4, dv = 10, scale = 0.25;
  const q = randF32(T * H * (dn + dr), 31), kv = randF32(L * H * (dn + dv), 32), kPe = randF32(L * dr, 33);
  const ref = new Float64Array(T * H * dv);
  for (let t = 0; t < T; t++)
    for (let h = 0; h < H; h++) {
      const sc: number[] = [];
      for (let i = 0; i <= q0 + t; i++) {
        let d = 0;
        for (let c = 0; c < dn; c++) d += q[(t * H + h) * (dn + dr) + c] * kv[(i * H + h) * (dn + dv) + c];
        for (let c = 0; c < dr; c++) d += q[(t * H + h) * (dn + dr) + dn + c] * kPe[i * dr + c];
        sc.push(d * scale);
      }
      softmax(sc).forEach((p, i) => {
        for (let v = 0; v < dv; v++) ref[t * H * dv + h * dv + v] += p * kv[(i * H + h) * (dn + dv) + dn + v];
      });
    }
  for (const isa of ISAS)
    test(isa, () => {
      useIsa(isa);
      const out = new Float32Array(T * H * dv).fill(NaN);
      check("mla_attend_naive", k.moe_mla_attend_naive(out, q, kv, kPe, T, L, q0, H, dn, dr, dv, scale, null));
      close(out, ref, `${isa} naive`);
    });
});
