// Device memory with a TS owner. A Device is one GPU of a device backend (the CUDA or HIP kernel
// library); a DeviceBuffer is memory moe_alloc'd on it, freed by its idempotent destroy(). Kernels
// of that library take `buffer.ptr` where the ABI wants a device pointer. See
// kernels/cuda/common.cuh for which kernel arguments are device and which are host memory.
import { type Pointer, dlopen } from "bun:ffi";
import { existsSync } from "node:fs";
import { ABI_VERSION, type Backend, type KernelSymbols, SYMBOLS, libraryPath } from "./ffi.ts";

export class DeviceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DeviceError";
  }
}

/** `cpu`, `cuda:N` or `hip:N` (a bare `cuda` / `hip` means device 0), as scaling configs write it. */
export function parseDevice(spec: string): { backend: Backend; index: number } {
  const m = /^(cpu|cuda|hip)(?::(\d+))?$/.exec(spec.trim());
  if (!m) throw new DeviceError(`device "${spec}" is not cpu, cuda:N or hip:N`);
  const backend = m[1] as Backend;
  if (backend === "cpu" && m[2] !== undefined) throw new DeviceError(`device "${spec}": the cpu backend has no device index`);
  return { backend, index: m[2] === undefined ? 0 : Number(m[2]) };
}

/** Host memory a copy may read or fill. */
export type HostArray = Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | Float32Array
  | Float64Array | BigInt64Array | BigUint64Array;
type View = HostArray;

/** A device address `bytes` past p (device pointers are plain numbers to bun:ffi). */
export function addr(p: Pointer, bytes: number): Pointer {
  return (p + bytes) as Pointer;
}
const libs = new Map<string, KernelSymbols>();

export class Device {
  /** name: the library's moe_backend() ("cuda", "hip", or "emu" for the CPU emulator build). */
  private constructor(readonly symbols: KernelSymbols, readonly name: string, readonly index: number) {}

  /**
   * Opens device `index` of a backend's library (or of the library at `path`, e.g. the CPU
   * emulator build) and makes it current on this thread. Throws a DeviceError naming what is
   * missing: the library, or a device.
   */
  static open(backend: Exclude<Backend, "cpu">, index = 0, path = libraryPath(backend)): Device {
    if (!existsSync(path))
      throw new DeviceError(`${backend}: kernel library ${path} is missing; build it with \`npm run build:kernels\` on a machine with the ${backend === "cuda" ? "CUDA toolkit (nvcc)" : "ROCm toolkit (hipcc)"}`);
    let s = libs.get(path);
    if (!s) {
      s = dlopen(path, SYMBOLS).symbols;
      const version = s.moe_abi_version();
      if (version !== ABI_VERSION) // built from an older header: it would misread our arguments
        throw new DeviceError(`${backend}: kernel library ${path} has ABI ${version}, this code needs ${ABI_VERSION}; rebuild it with \`npm run build:kernels\``);
      libs.set(path, s);
    }
    const count = new Int32Array(1);
    if (s.moe_device_count(count) !== 0 || count[0] === 0) {
      const why = String(s.moe_last_error() ?? "");
      throw new DeviceError(`${backend}: no device available (${path} reports ${count[0]} devices${why ? `: ${why}` : ""})`);
    }
    if (index < 0 || index >= count[0]) throw new DeviceError(`${backend}:${index}: only ${count[0]} device(s) present`);
    const d = new Device(s, String(s.moe_backend()), index);
    d.check("moe_set_device", s.moe_set_device(index));
    return d;
  }

  /** Throws a DeviceError with the library's message when a call did not return MOE_OK. */
  check(what: string, status: number): void {
    if (status !== 0) throw new DeviceError(`${this.name}:${this.index} ${what} failed (status ${status}): ${this.symbols.moe_last_error()}`);
  }

  alloc(bytes: number): DeviceBuffer {
    return new DeviceBuffer(this, bytes);
  }

  /** A device copy of a host array. */
  upload(src: View, stream: Stream | null = null): DeviceBuffer {
    const b = this.alloc(src.byteLength);
    b.upload(src, 0, stream);
    return b;
  }

  sync(stream: Stream | null = null): void {
    this.check("moe_sync", this.symbols.moe_sync(stream?.handle ?? null));
  }

  stream(): Stream {
    return new Stream(this);
  }
}

/** Device memory owned by this object; `ptr` is the device address to hand to the kernels. */
export class DeviceBuffer {
  private p: Pointer | 0;

  constructor(readonly device: Device, readonly bytes: number) {
    const out = new BigUint64Array(1);
    device.check(`moe_alloc(${bytes})`, device.symbols.moe_alloc(out, bytes));
    this.p = Number(out[0]) as Pointer;
  }

  get ptr(): Pointer {
    if (this.p === 0) throw new DeviceError("use of a destroyed DeviceBuffer");
    return this.p;
  }

  get destroyed(): boolean {
    return this.p === 0;
  }

  /** Device address `offset` bytes in. */
  at(offset: number): Pointer {
    if (offset < 0 || offset > this.bytes) throw new DeviceError(`offset ${offset} outside a ${this.bytes}-byte buffer`);
    return addr(this.ptr, offset);
  }

  /** Queues a copy of src to `offset` bytes in; src may be reused as soon as this returns. */
  upload(src: View, offset = 0, stream: Stream | null = null): void {
    this.range(offset, src.byteLength);
    if (src.byteLength === 0) return;
    this.device.check("moe_memcpy_h2d", this.device.symbols.moe_memcpy_h2d(this.at(offset), src, src.byteLength, stream?.handle ?? null));
  }

  /** Copies into `into` from `offset` bytes in and waits for the stream, so `into` is ready. */
  download<T extends View>(into: T, offset = 0, stream: Stream | null = null): T {
    this.range(offset, into.byteLength);
    if (into.byteLength === 0) return into;
    this.device.check("moe_memcpy_d2h", this.device.symbols.moe_memcpy_d2h(into, this.at(offset), into.byteLength, stream?.handle ?? null));
    this.device.sync(stream);
    return into;
  }

  destroy(): void {
    if (this.p === 0) return;
    const p = this.p;
    this.p = 0;
    this.device.check("moe_free", this.device.symbols.moe_free(p));
  }

  private range(offset: number, n: number): void {
    if (offset < 0 || offset + n > this.bytes)
      throw new DeviceError(`copy of ${n} bytes at offset ${offset} outside a ${this.bytes}-byte buffer`);
  }
}

/** A device stream: kernels queued on it run in order; Device.sync(stream) waits for them. */
export class Stream {
  private h: Pointer | 0;

  constructor(readonly device: Device) {
    const out = new BigUint64Array(1);
    device.check("moe_stream_create", device.symbols.moe_stream_create(out));
    this.h = Number(out[0]) as Pointer;
  }

  get handle(): Pointer {
    if (this.h === 0) throw new DeviceError("use of a destroyed Stream");
    return this.h;
  }

  destroy(): void {
    if (this.h === 0) return;
    const h = this.h;
    this.h = 0;
    this.device.check("moe_stream_destroy", this.device.symbols.moe_stream_destroy(h));
  }
}
