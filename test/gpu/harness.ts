// Where the GPU tests run: the CUDA and HIP libraries on a real device when there is one, and
// "emu", the same device sources built for the CPU emulator (slow, but it runs every kernel's
// code on any machine). A target that cannot run is skipped with a printed reason.
// MOE_GPU_TARGETS=cuda,emu picks targets; MOE_GPU_REQUIRE=cuda makes a missing one an error.
import { seededRandom } from "../../src/engine/sequence.ts";
import { describe } from "bun:test";
import type { Pointer } from "bun:ffi";
import { join } from "node:path";
import { Device, DeviceBuffer, addr } from "../../src/kernels/device.ts";
import type { HostArray } from "../../src/kernels/device.ts";
import { type KernelSymbols, openLibrary } from "../../src/kernels/ffi.ts";
import { compare } from "../helpers/golden.ts";

export interface Target {
  name: string;
  device: Device | null;
  why: string;
}

const root = join(import.meta.dir, "..", "..");
let cached: Target[] | null = null;

export function targets(): Target[] {
  if (cached) return cached;
  const want = (process.env.MOE_GPU_TARGETS ?? "cuda,hip,emu").split(",").map((s) => s.trim());
  const open = (name: string, f: () => Device): Target => {
    try {
      return { name, device: f(), why: "" };
    } catch (e) {
      return { name, device: null, why: (e as Error).message };
    }
  };
  cached = [];
  if (want.includes("cuda")) cached.push(open("cuda", () => Device.open("cuda")));
  if (want.includes("hip")) cached.push(open("hip", () => Device.open("hip")));
  if (want.includes("emu")) cached.push(open("emu", () => Device.open("cuda", 0, join(root, "kernels", "build", "libmoe_emu.so"))));
  for (const r of (process.env.MOE_GPU_REQUIRE ?? "").split(",").filter(Boolean)) {
    const t = cached.find((x) => x.name === r);
    if (!t?.device) throw new Error(`MOE_GPU_REQUIRE=${r}: ${t?.why ?? "not among MOE_GPU_TARGETS"}`);
  }
  return cached;
}

/** describe() per target; a target that cannot run is skipped with its reason printed. */
export function forTargets(what: string, body: (t: Target & { device: Device }) => void): void {
  for (const t of targets()) {
    if (!t.device) console.log(`[gpu] SKIPPED ${what} on ${t.name}: ${t.why}`);
    describe.skipIf(!t.device)(`${what} [${t.name}]`, () => {
      if (t.device) body(t as Target & { device: Device });
    });
  }
}

let cpuLib: KernelSymbols | null = null;
export function cpu(): KernelSymbols {
  return (cpuLib ??= openLibrary("cpu").symbols);
}

/** Deterministic pseudo-random numbers (mulberry32), so failures reproduce. */
export const rng = seededRandom;

export function randn(n: number, r: () => number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (r() * 2 - 1 + (r() * 2 - 1) + (r() * 2 - 1)) * scale;
  return out;
}

/** Device buffers of one test, freed together. */
/** Runs f with a Scope whose device buffers are freed afterwards, whatever f does. */
export function withScope(device: Device, f: (sc: Scope) => void): void {
  const sc = new Scope(device);
  try {
    f(sc);
  } finally {
    sc.free();
  }
}

export class Scope {
  private readonly bufs: DeviceBuffer[] = [];
  constructor(readonly device: Device) {}
  put(a: HostArray): Pointer {
    const b = this.device.upload(a);
    this.bufs.push(b);
    return b.ptr;
  }
  alloc(bytes: number): DeviceBuffer {
    const b = this.device.alloc(bytes);
    this.bufs.push(b);
    return b;
  }
  /** Device address of a weight's data (as unaligned as it was padded) and of its scales. */
  weight(w: HostWeight): { data: Pointer; scale: Pointer | null } {
    return { data: addr(this.put(w.raw), w.pad), scale: w.scale ? this.put(w.scale) : null };
  }
  /** A device buffer holding a copy of `a`, to read back later with get(). */
  buf(a: HostArray): DeviceBuffer {
    const b = this.device.upload(a);
    this.bufs.push(b);
    return b;
  }
  get<T extends HostArray>(b: DeviceBuffer, into: T): T {
    return b.download(into);
  }
  free(): void {
    for (const b of this.bufs) b.destroy();
  }
}

/** A non-NULL address for calls that must be refused before they touch memory. */
export const FAKE = 8 as Pointer;

/** Fails with the worst element when |got - want| > atol + rtol * |want| anywhere. */
export function expectNear(got: ArrayLike<number>, want: ArrayLike<number>, what: string, atol: number, rtol: number): void {
  const r = compare(got, want, atol, rtol);
  if (!r.ok)
    throw new Error(`${what}: |diff| ${r.maxAbs} exceeds ${atol} + ${rtol}*|ref| (worst at ${r.at}: ${got[r.at]} vs ${want[r.at]})`);
}

/** A weight [rows, cols] in a stored dtype (0 F32, 1 BF16, 2 F8E4M3 with 128x128 scales). */
export interface HostWeight {
  dtype: number;
  data: Uint8Array;
  scale: Float32Array | null;
  rows: number;
  cols: number;
  raw: Uint8Array; // `pad` bytes, then data
  pad: number;
}

export function randomWeight(rows: number, cols: number, dtype: number, r: () => number, pad = 0): HostWeight {
  const f = randn(rows * cols, r, 0.5);
  const bytesPer = dtype === 0 ? 4 : dtype === 1 ? 2 : 1;
  // `pad` leading bytes make the weight unaligned inside its buffer, as in a safetensors file.
  const raw = new Uint8Array(pad + rows * cols * bytesPer);
  const data = raw.subarray(pad);
  let scale: Float32Array | null = null;
  if (dtype === 0) new Uint8Array(f.buffer).forEach((b, i) => (data[i] = b));
  else if (dtype === 1) {
    const u = new Uint32Array(f.buffer);
    for (let i = 0; i < f.length; i++) {
      const v = u[i] >>> 16;
      data[2 * i] = v & 255;
      data[2 * i + 1] = v >>> 8;
    }
  } else {
    for (let i = 0; i < data.length; i++) {
      let b = Math.floor(r() * 256);
      if ((b & 0x7f) === 0x7f) b ^= 1; // no NaN codes
      data[i] = b;
    }
    scale = new Float32Array(Math.ceil(rows / 128) * Math.ceil(cols / 128));
    for (let i = 0; i < scale.length; i++) scale[i] = 0.0005 + r() * 0.002;
  }
  return { dtype, data, scale, rows, cols, raw, pad };
}
