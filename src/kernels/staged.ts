// The Kernels interface over a device library (CUDA, HIP): host arrays are staged to the device
// around every call, weights uploaded once and kept. This lets any actor run on a GPU by its
// scaling config's `device` alone; it is correct but pays a copy per call, so the fast path is
// device-resident tensors (see test/gpu/forward.ts for that call sequence).
import type { Pointer } from "bun:ffi";
import type { Weight } from "../checkpoint/checkpoint.ts";
import type { Device, DeviceBuffer } from "./device.ts";
import { type ExpertWeights, KernelError, type Kernels, cacheSlots, kvDtypeCode } from "./kernels.ts";

type View = Float32Array | Int32Array | Uint8Array | Uint16Array;

export function stagedKernels(device: Device): Kernels {
  const s = device.symbols;
  const resident = new WeakMap<object, DeviceBuffer>();
  /** Device copy of a weight (or other constant array), uploaded on first use. */
  const w = (a: View | null | undefined): Pointer | null => {
    if (!a || a.byteLength === 0) return null;
    let b = resident.get(a);
    if (!b) resident.set(a, (b = device.upload(a)));
    return b.ptr;
  };

  /** One kernel call: inputs up, the call, outputs down, temporaries freed. */
  const call = (name: string, f: (io: (a: View, out?: boolean) => Pointer) => number) => {
    const staged: { a: View; b: DeviceBuffer; out: boolean }[] = [];
    const io = (a: View, out = false) => {
      const same = staged.find((e) => e.a.buffer === a.buffer && e.a.byteOffset === a.byteOffset && e.a.byteLength === a.byteLength);
      if (same) {
        same.out ||= out;
        return same.b.ptr;
      }
      const b = device.alloc(Math.max(a.byteLength, 4));
      b.upload(a);
      staged.push({ a, b, out });
      return b.ptr;
    };
    try {
      const st = f(io);
      if (st !== 0) throw new KernelError(name, st, String(s.moe_last_error()));
      device.sync();
      for (const e of staged) if (e.out) e.b.download(e.a);
    } finally {
      for (const e of staged) e.b.destroy();
    }
  };
  const cols = (x: Weight) => x.shape[x.shape.length - 1];

  return {
    backend: device.name === "hip" ? "hip" : "cuda",
    threads: () => 1,
    linear(out, x, wt, T, o = {}) {
      const K = o.K ?? cols(wt), N = o.N ?? wt.shape[0];
      call("moe_linear", (io) => s.moe_linear(io(out, true), o.ldo ?? N, io(x), o.ldx ?? K, w(wt.data), w(wt.scale), wt.dtype, o.row0 ?? 0, T, N, K, null));
    },
    rmsnorm(out, x, wt, T, D, eps, o = {}) {
      call("moe_rmsnorm", (io) => s.moe_rmsnorm(io(out, true), o.ldo ?? D, io(x), o.ldx ?? D, w(wt.data), wt.dtype, T, D, eps, null));
    },
    embed(out, ids, table, T) {
      call("moe_embed", (io) => s.moe_embed(io(out, true), io(ids), w(table.data), table.dtype, T, table.shape[1], table.shape[0], null));
    },
    rope(x, positions, invFreq, T, g) {
      call("moe_rope", (io) => s.moe_rope(io(x, true), g.ldToken, g.ldHead, g.heads, g.offset, io(positions), w(invFreq), T, g.ropeDim, null));
    },
    siluMul(out, g, u, T, I, o = {}) {
      call("moe_silu_mul", (io) => s.moe_silu_mul(io(out, true), o.ldo ?? I, io(g), o.ldg ?? I, io(u), o.ldu ?? I, T, I, null));
    },
    add(y, x, T, D, alpha = 1) {
      call("moe_add", (io) => s.moe_add(io(y, true), D, io(x), D, alpha, T, D, null));
    },
    gate(ids, weights, x, wt, bias, T, g) {
      call("moe_gate", (io) => s.moe_gate(io(ids, true), io(weights, true), io(x), g.D, w(wt.data), wt.dtype, w(bias), T, g.D, g.E,
        g.nGroup, g.topkGroup, g.k, g.scoreFunc === "sigmoid" ? 0 : 1, g.normTopk ? 1 : 0, g.routeScale, null));
    },
    experts(out, x, groups, experts, _T, D, I) {
      const table = (f: (e: ExpertWeights) => View | null) => new BigUint64Array(experts.map((e) => BigInt((e && w(f(e))) || 0)));
      const dtype = experts.find((e) => e)?.w1.dtype ?? 0;
      call("moe_experts", (io) => s.moe_experts(io(out, true), D, io(x), D, groups.offsets, io(groups.rows), io(groups.rw),
        table((e) => e.w1.data), table((e) => e.w1.scale), table((e) => e.w3.data), table((e) => e.w3.scale),
        table((e) => e.w2.data), table((e) => e.w2.scale), dtype, experts.length, D, I, null, null));
    },
    kvWrite(c, latent, ldLatent, peIn, ldPe, slots, T, C, dr) {
      call("moe_kv_write", (io) => s.moe_kv_write(io(c.kv, true), io(c.pe, true), c.scale ? io(c.scale, true) : null, kvDtypeCode(c),
        io(latent), ldLatent, io(peIn), ldPe, io(slots), T, C, dr, cacheSlots(c, C, dr), null));
    },
    kvGather(latent, pe, c, bt, L, C, dr, pageSize) {
      call("moe_kv_gather", (io) => s.moe_kv_gather(io(latent, true), io(pe, true), io(c.kv), io(c.pe), c.scale ? io(c.scale) : null,
        kvDtypeCode(c), io(bt), L, C, dr, pageSize, cacheSlots(c, C, dr), null));
    },
    mlaAbsorbQ(qLat, q, wt, T, m) {
      call("moe_mla_absorb_q", (io) => s.moe_mla_absorb_q(io(qLat, true), io(q), w(wt.data), w(wt.scale), wt.dtype, T, m.H, m.dn, m.dr, m.dv, m.C, null));
    },
    mlaAbsorbOut(out, oLat, wt, T, m) {
      call("moe_mla_absorb_out", (io) => s.moe_mla_absorb_out(io(out, true), io(oLat), w(wt.data), w(wt.scale), wt.dtype, T, m.H, m.dn, m.dv, m.C, null));
    },
    mlaAttend(oLat, qLat, q, c, b, m, scale) {
      // cu_q and ctx_len are host arrays in the device ABI (kernels/cuda/common.cuh).
      call("moe_mla_attend", (io) => s.moe_mla_attend(io(oLat, true), io(qLat), io(q), io(c.kv), io(c.pe), c.scale ? io(c.scale) : null,
        kvDtypeCode(c), io(b.blockTables), b.maxBlocks, b.cuQ, b.ctxLen, b.S, m.H, m.C, m.dn, m.dr, b.pageSize, cacheSlots(c, m.C, m.dr),
        scale, null));
    },
    mlaAttendNaive(out, q, kv, kPe, T, L, qPos0, m, scale) {
      call("moe_mla_attend_naive", (io) => s.moe_mla_attend_naive(io(out, true), io(q), io(kv), io(kPe), T, L, qPos0, m.H, m.dn, m.dr, m.dv, scale, null));
    },
    argmax(ids, logits, T, V) {
      call("moe_argmax", (io) => s.moe_argmax(io(ids, true), io(logits), T, V, null));
    },
    logSoftmax(out, logits, T, V) {
      call("moe_log_softmax", (io) => s.moe_log_softmax(io(out, true), io(logits), T, V, null));
    },
    sample(logits, V, p) {
      const id = new Int32Array(1);
      call("moe_sample", (io) => s.moe_sample(io(id, true), io(logits), V, p.temperature, p.topK, p.topP, p.minP, p.u, null, null));
      return id[0];
    },
  };
}

