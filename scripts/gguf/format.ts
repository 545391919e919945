// A GGUF v3 file writer: magic, version, key/value metadata, tensor infos, then the tensor data,
// each tensor aligned to 32 bytes. Tensor bytes are produced one tensor at a time by a callback,
// so a file larger than memory streams out. Layout per ggml/docs/gguf.md; little-endian throughout.
import { closeSync, openSync, writeSync } from "node:fs";

export const ALIGNMENT = 32;

/** ggml tensor types this converter writes (ggml.h `enum ggml_type`). */
export const GGML = { F32: 0, F16: 1, Q8_0: 8, BF16: 30 } as const;
export type GgmlType = (typeof GGML)[keyof typeof GGML];

/** Bytes of one row of `n` elements (Q8_0: blocks of 32 = fp16 scale + 32 int8). */
export function rowBytes(type: GgmlType, n: number): number {
  switch (type) {
    case GGML.F32: return 4 * n;
    case GGML.F16: case GGML.BF16: return 2 * n;
    case GGML.Q8_0:
      if (n % 32 !== 0) throw new Error(`Q8_0 needs rows that are a multiple of 32 elements, got ${n}`);
      return (n / 32) * 34;
  }
}

// gguf_type: the value types of metadata
const T = { U32: 4, I32: 5, F32: 6, BOOL: 7, STR: 8, ARR: 9, U64: 10 } as const;

/** A growable little-endian byte buffer. */
class Bytes {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;
  private room(n: number): number {
    if (this.length + n > this.buf.length) {
      const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }
  // room() may replace buf/view, so it runs before they are read
  u32(v: number): void { const at = this.room(4); this.view.setUint32(at, v, true); }
  i32(v: number): void { const at = this.room(4); this.view.setInt32(at, v, true); }
  u64(v: number): void { const at = this.room(8); this.view.setBigUint64(at, BigInt(v), true); }
  f32(v: number): void { const at = this.room(4); this.view.setFloat32(at, v, true); }
  u8(v: number): void { const at = this.room(1); this.view.setUint8(at, v); }
  str(s: string): void {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    const at = this.room(b.length);
    this.buf.set(b, at);
  }
  bytes(): Uint8Array { return this.buf.subarray(0, this.length); }
}

export interface TensorSpec {
  readonly name: string;
  /** ggml order: ne[0] is the row length (the reverse of the PyTorch shape). */
  readonly ne: readonly number[];
  readonly type: GgmlType;
  /** Emits exactly the tensor's bytes, in order, through `put` (any number of chunks). */
  readonly produce: (put: (chunk: Uint8Array) => void) => void;
}

export function tensorBytes(t: Pick<TensorSpec, "ne" | "type">): number {
  return rowBytes(t.type, t.ne[0]) * t.ne.slice(1).reduce((a, b) => a * b, 1);
}

const pad = (n: number) => (ALIGNMENT - (n % ALIGNMENT)) % ALIGNMENT;

export class GgufWriter {
  private readonly kv = new Bytes();
  private kvCount = 0;
  private readonly tensors: TensorSpec[] = [];

  private key(k: string, type: number): Bytes {
    this.kv.str(k);
    this.kv.u32(type);
    this.kvCount++;
    return this.kv;
  }
  u32(k: string, v: number): void { this.key(k, T.U32).u32(v); }
  f32(k: string, v: number): void { this.key(k, T.F32).f32(v); }
  bool(k: string, v: boolean): void { this.key(k, T.BOOL).u8(v ? 1 : 0); }
  str(k: string, v: string): void { this.key(k, T.STR).str(v); }
  strs(k: string, v: readonly string[]): void {
    const b = this.key(k, T.ARR);
    b.u32(T.STR); b.u64(v.length);
    for (const s of v) b.str(s);
  }
  i32s(k: string, v: readonly number[]): void {
    const b = this.key(k, T.ARR);
    b.u32(T.I32); b.u64(v.length);
    for (const x of v) b.i32(x);
  }

  add(t: TensorSpec): void {
    if (this.tensors.some((o) => o.name === t.name)) throw new Error(`duplicate tensor ${t.name}`);
    this.tensors.push(t);
  }

  /** Writes the whole file; returns its size in bytes. */
  write(path: string, onTensor?: (t: TensorSpec, i: number, n: number) => void): number {
    const head = new Bytes();
    head.u32(0x46554747); // "GGUF"
    head.u32(3);
    head.u64(this.tensors.length);
    head.u64(this.kvCount);
    const kv = this.kv.bytes();
    let offset = 0;
    const infos = new Bytes();
    for (const t of this.tensors) {
      infos.str(t.name);
      infos.u32(t.ne.length);
      for (const d of t.ne) infos.u64(d);
      infos.u32(t.type);
      infos.u64(offset);
      offset += tensorBytes(t);
      offset += pad(offset);
    }
    const fd = openSync(path, "w");
    let pos = 0;
    const out = (b: Uint8Array) => {
      for (let done = 0; done < b.length;) done += writeSync(fd, b, done, b.length - done);
      pos += b.length;
    };
    try {
      out(head.bytes()); out(kv); out(infos.bytes());
      out(new Uint8Array(pad(pos)));
      this.tensors.forEach((t, i) => {
        onTensor?.(t, i, this.tensors.length);
        const start = pos;
        t.produce(out);
        const want = tensorBytes(t);
        if (pos - start !== want) throw new Error(`tensor ${t.name}: produced ${pos - start} bytes, expected ${want}`);
        out(new Uint8Array(pad(pos)));
      });
    } finally {
      closeSync(fd);
    }
    return pos;
  }
}
