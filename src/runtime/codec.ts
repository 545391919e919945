// The wire codec: msgpack (msgpackr) plus one extension for typed arrays (tensors).
//
//   encode(msg): Uint8Array          bytes that may share an ArrayBuffer with other encodings
//   encodeOwned(msg): Uint8Array     bytes whose ArrayBuffer belongs to the caller alone (safe to
//                                    transfer to a Worker or hand to IPC)
//   decode(bytes): unknown           typed arrays come back as views on `bytes` when aligned
//   TYPED_ARRAYS                     the wire code of each typed array class (index = code)
//
// Extension 0x54 ("T") payload: [code u8][pad u8][pad zero bytes][data][7 - pad zero bytes].
// The pad puts the data on an 8-byte boundary relative to the start of the message, so a receiver
// that gets the message at an aligned offset (a transferred buffer, a fresh IPC buffer) can view the
// data in place; only a misaligned arrival pays a copy. Elements are little-endian (every host we
// run on is), so no byte swapping happens on either side.
import { Packr, Unpackr, addExtension } from "msgpackr";

type TypedArrayCtor = {
  new (buffer: ArrayBufferLike, byteOffset?: number, length?: number): ArrayBufferView;
  readonly BYTES_PER_ELEMENT: number;
  readonly name: string;
};

const g = globalThis as unknown as Record<string, TypedArrayCtor | undefined>;
const NAMES = [
  "Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array", "Int32Array",
  "Uint32Array", "Float32Array", "Float64Array", "BigInt64Array", "BigUint64Array", "Float16Array",
] as const;

/** Wire code -> class. Codes are fixed by position so both ends agree without negotiation. */
export const TYPED_ARRAYS: readonly (TypedArrayCtor | undefined)[] = NAMES.map((n) => g[n]);

const EXT_TYPE = 0x54;
const HEADER = 6; // 0xc9, u32 length, ext type: we always use ext32 so the header size is fixed

function packTyped(
  code: number,
  view: ArrayBufferView,
  allocateForWrite: (size: number) => { target: Uint8Array; position: number },
): void {
  const n = view.byteLength;
  const payload = 2 + 7 + n;
  const { target, position } = allocateForWrite(HEADER + payload);
  // msgpackr starts every message on an 8-byte boundary of its buffer, so an absolute
  // position that is aligned is also aligned relative to the message start.
  const dataAt = position + HEADER + 2;
  const pad = (8 - (dataAt % 8)) % 8;
  target[position] = 0xc9;
  new DataView(target.buffer, target.byteOffset).setUint32(position + 1, payload);
  target[position + 5] = EXT_TYPE;
  target[position + 6] = code;
  target[position + 7] = pad;
  target.fill(0, dataAt, dataAt + pad);
  target.set(new Uint8Array(view.buffer, view.byteOffset, n), dataAt + pad);
  target.fill(0, dataAt + pad + n, position + HEADER + payload);
}

function unpackTyped(data: Uint8Array): ArrayBufferView {
  const code = data[0]!;
  const Ctor = TYPED_ARRAYS[code];
  if (!Ctor) throw new Error(`codec: unknown typed array code ${code}`);
  const pad = data[1]!;
  const byteLength = data.byteLength - 9;
  const at = data.byteOffset + 2 + pad;
  const length = byteLength / Ctor.BYTES_PER_ELEMENT;
  if (at % Ctor.BYTES_PER_ELEMENT === 0) return new Ctor(data.buffer, at, length);
  // Misaligned (e.g. a frame that arrived mid-chunk): copy into a fresh, aligned buffer.
  const copy = new Uint8Array(byteLength);
  copy.set(new Uint8Array(data.buffer, at, byteLength));
  return new Ctor(copy.buffer, 0, length);
}

// msgpackr extensions are process-global: registering once here covers every Packr/Unpackr.
TYPED_ARRAYS.forEach((Ctor, code) => {
  if (!Ctor) return;
  addExtension({
    Class: Ctor,
    type: EXT_TYPE,
    pack(value: ArrayBufferView, allocateForWrite: never) {
      packTyped(code, value, allocateForWrite);
    },
    unpack: unpackTyped,
  } as unknown as Parameters<typeof addExtension>[0]);
});

const options = { useRecords: false, mapsAsObjects: true, moreTypes: false } as const;
// msgpackr keeps its output buffer in module state shared by every Packr, so one is enough.
const packr = new Packr(options);
const unpackr = new Unpackr(options);

/** Encode a message. The bytes stay valid, but may share their ArrayBuffer with other encodings. */
export function encode(msg: unknown): Uint8Array {
  return packr.pack(msg);
}

const OWNED_THRESHOLD = 64 * 1024;
const SLACK = 16 * 1024; // room for the non-tensor part of a large message

/** Bytes of typed-array data in a message (plain objects and short arrays, a few levels deep). */
export function tensorBytes(msg: unknown, depth = 0): number {
  if (!msg || typeof msg !== "object" || depth > 6) return 0;
  if (ArrayBuffer.isView(msg)) return msg.byteLength + 16;
  let n = 0;
  if (Array.isArray(msg)) {
    if (msg.length > 256) return 0; // a long list of numbers holds no tensors worth sizing for
    for (const v of msg) n += tensorBytes(v, depth + 1);
  } else for (const k in msg) n += tensorBytes((msg as Record<string, unknown>)[k], depth + 1);
  return n;
}

/**
 * Encode into bytes whose ArrayBuffer nobody else uses, so it can be transferred (postMessage
 * transfer list) without detaching another message. Small messages are copied out of msgpackr's
 * shared buffer. A message carrying large tensors is written once into a fresh buffer sized from
 * its tensors (msgpackr would otherwise grow its buffer 4x and we would copy again), which is
 * taken whole; msgpackr gets a new small buffer for the next message.
 */
export function encodeOwned(msg: unknown): Uint8Array {
  const big = tensorBytes(msg);
  if (big < OWNED_THRESHOLD) return copyBytes(packr.pack(msg));
  // Uninitialized and unpooled (its own ArrayBuffer): msgpackr writes every byte we send.
  packr.useBuffer(Buffer.allocUnsafeSlow(big + SLACK));
  const bytes = packr.pack(msg);
  // Hand msgpackr a Buffer, never a plain Uint8Array: it picked its string writer
  // (Buffer#utf8Write, for strings of 64+ chars) when it was built, and calls it on whatever
  // buffer it is given. A Uint8Array here broke the next long string after a large frame.
  packr.useBuffer(Buffer.allocUnsafeSlow(OWNED_THRESHOLD));
  return bytes;
}

/** A copy in a fresh, exactly sized buffer. (msgpackr hands out Buffers, whose slice() is a view.) */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

/** Decode a message. Typed arrays are views on `bytes` where alignment allows: keep `bytes` alive. */
export function decode(bytes: Uint8Array): unknown {
  return unpackr.unpack(bytes);
}
