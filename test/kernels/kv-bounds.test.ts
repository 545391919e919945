// The kernels that write and read the paged latent cache refuse slots and pages outside it
// (issue 13 item 11): a status, a last-error naming the index and the cache size, and nothing
// written. Before, an out-of-range slot wrote past the cache and a bad page read past it.
import { describe, expect, test } from "bun:test";
import { cpuKernels } from "../../src/kernels/kernels.ts";
import { k } from "./helpers.ts";

const C = 8, dr = 4, ps = 4, nPages = 3, nSlots = nPages * ps;
const EINVAL = 1;

function cache() {
  return { kv: new Float32Array(nSlots * C), pe: new Float32Array(nSlots * dr) };
}
const latent = Float32Array.from({ length: 2 * (C + dr) }, (_, i) => i + 1); // two tokens, [C | dr] rows

describe("KV slot bounds", () => {
  test("moe_kv_write refuses a slot at or past the end of the cache, and writes nothing", () => {
    for (const bad of [nSlots, nSlots + 100, -2]) {
      const { kv, pe } = cache();
      const slots = Int32Array.from([1, bad]); // the good first slot must not be written either
      expect(k.moe_kv_write(kv, pe, null, 0, latent, C + dr, latent.subarray(C), C + dr, slots, 2, C, dr, nSlots, null)).toBe(EINVAL);
      expect(String(k.moe_last_error())).toBe(`moe_kv_write: slot ${bad} outside the KV cache [0, ${nSlots})`);
      expect(kv.every((v) => v === 0) && pe.every((v) => v === 0)).toBe(true);
    }
  });

  test("moe_kv_write accepts the last slot", () => {
    const { kv, pe } = cache();
    expect(k.moe_kv_write(kv, pe, null, 0, latent, C + dr, latent.subarray(C), C + dr, Int32Array.from([nSlots - 1]), 1, C, dr, nSlots, null)).toBe(0);
    expect(Array.from(kv.subarray((nSlots - 1) * C))).toEqual(Array.from(latent.subarray(0, C)));
  });

  test("moe_kv_gather refuses a block table page outside the cache", () => {
    const { kv, pe } = cache();
    const out = new Float32Array(2 * ps * C), outPe = new Float32Array(2 * ps * dr);
    const L = ps + 1; // two pages are read
    for (const bad of [nPages, -1]) {
      expect(k.moe_kv_gather(out, outPe, kv, pe, null, 0, Int32Array.from([0, bad]), L, C, dr, ps, nSlots, null)).toBe(EINVAL);
      expect(String(k.moe_last_error())).toBe(`moe_kv_gather: page ${bad} outside the KV cache of ${nPages} pages`);
    }
    // A page past the positions read is not looked at.
    expect(k.moe_kv_gather(out, outPe, kv, pe, null, 0, Int32Array.from([2, 99]), ps, C, dr, ps, nSlots, null)).toBe(0);
  });

  test("moe_mla_attend refuses a page outside the cache in a sequence's block table", () => {
    const { kv, pe } = cache();
    const H = 2, dn = 3, T = 1;
    const oLat = new Float32Array(T * H * C), qLat = new Float32Array(T * H * C).fill(0.1), q = new Float32Array(T * H * (dn + dr));
    const maxBlocks = 2, bt = Int32Array.from([0, nPages + 5]);
    const cuQ = Int32Array.from([0, 1]), ctxLen = Int32Array.from([ps + 2]);
    expect(k.moe_mla_attend(oLat, qLat, q, kv, pe, null, 0, bt, maxBlocks, cuQ, ctxLen, 1, H, C, dn, dr, ps, nSlots, 0.5, null)).toBe(EINVAL);
    expect(String(k.moe_last_error())).toBe(`moe_mla_attend: page ${nPages + 5} outside the KV cache of ${nPages} pages`);
    bt[1] = nPages - 1;
    expect(k.moe_mla_attend(oLat, qLat, q, kv, pe, null, 0, bt, maxBlocks, cuQ, ctxLen, 1, H, C, dn, dr, ps, nSlots, 0.5, null)).toBe(0);
  });

  test("the Kernels interface sizes the cache from its arrays and throws a KernelError", () => {
    const kern = cpuKernels();
    const { kv, pe } = cache();
    expect(() => kern.kvWrite({ dtype: "f32", kv, pe, scale: null }, latent, C + dr, latent.subarray(C), C + dr, Int32Array.from([nSlots]), 1, C, dr))
      .toThrow(`moe_kv_write failed (status 1): moe_kv_write: slot ${nSlots} outside the KV cache [0, ${nSlots})`);
    const short = pe.subarray(0, (nSlots - 1) * dr); // a pe cache one row short bounds the slots too
    expect(() => kern.kvWrite({ dtype: "f32", kv, pe: short, scale: null }, latent, C + dr, latent.subarray(C), C + dr, Int32Array.from([nSlots - 1]), 1, C, dr))
      .toThrow(/slot 11 outside the KV cache \[0, 11\)/);
  });

  test("compact caches are sized in their own elements; an fp8 cache's scale rows bound it too", () => {
    const kern = cpuKernels(), slot = Int32Array.from([nSlots - 1]);
    const bf = { dtype: "bf16" as const, kv: new Uint16Array(nSlots * C), pe: new Uint16Array(nSlots * dr), scale: null };
    kern.kvWrite(bf, latent, C + dr, latent.subarray(C), C + dr, slot, 1, C, dr); // the last row of a bf16 cache
    const f8 = { dtype: "fp8" as const, kv: new Uint8Array(nSlots * C), pe: new Uint16Array(nSlots * dr), scale: new Float32Array(nSlots - 1) };
    expect(() => kern.kvWrite(f8, latent, C + dr, latent.subarray(C), C + dr, slot, 1, C, dr))
      .toThrow(/slot 11 outside the KV cache \[0, 11\)/);
    // Arrays of another dtype than the cache says would be read at the wrong width.
    expect(() => kern.kvWrite({ ...bf, kv: new Float32Array(nSlots * C) }, latent, C + dr, latent.subarray(C), C + dr, slot, 1, C, dr))
      .toThrow("a bf16 KV cache has arrays of another dtype");
  });
});
