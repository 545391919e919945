// Property test for the wire codec: randomly shaped messages (nested objects, strings of random
// lengths incl. 64+ chars and non-ASCII, numbers, typed arrays of every supported kind), with
// tensor data sized around every power of two from 1 KiB to 4 MiB, interleaved with small
// messages, through both encode() and encodeOwned(). A fixed seed keeps any failure reproducible:
// the failing case's index and size are in the assertion message.
import { describe, expect, test } from "bun:test";
import { TYPED_ARRAYS, decode, encode, encodeOwned } from "../../src/runtime/codec.ts";

const SEED = 0x5eed_0013;

/** mulberry32: a small, well-known seeded generator (uniform in [0, 1)). */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
type Rand = ReturnType<typeof rng>;
const int = (r: Rand, n: number) => Math.floor(r() * n);

// Whole code points only (lone surrogates do not survive UTF-8), ASCII and beyond.
const ALPHABET = ["a", "Z", "0", " ", "-", "é", "ü", "Ω", "ж", "✓", "漢", "字", "😀", "🧠", "\n", "\"", "\\"];

function randomString(r: Rand): string {
  // Mostly around the 64-char boundary where msgpackr switches string writers, sometimes long.
  const pick = r();
  const len = pick < 0.5 ? 60 + int(r, 10) : pick < 0.8 ? int(r, 64) : int(r, 70_000);
  const ascii = r() < 0.5;
  let s = "";
  for (let i = 0; i < len; i++) s += ascii ? String.fromCharCode(32 + int(r, 95)) : ALPHABET[int(r, ALPHABET.length)];
  return s;
}

function randomNumber(r: Rand): number {
  switch (int(r, 5)) {
    case 0: return int(r, 256);
    case 1: return -int(r, 1 << 30);
    case 2: return int(r, 2 ** 52) * (r() < 0.5 ? -1 : 1);
    case 3: return (r() - 0.5) * 1e6;
    default: return r() < 0.5 ? 0 : -1.5;
  }
}

const KINDS = TYPED_ARRAYS.map((C, code) => ({ C, code })).filter((k) => k.C !== undefined);

/** A typed array of a random supported kind with about `bytes` bytes of random contents. */
function randomTensor(r: Rand, bytes: number): ArrayBufferView {
  const { C } = KINDS[int(r, KINDS.length)]!;
  const n = Math.max(0, Math.floor(bytes / C!.BYTES_PER_ELEMENT));
  const t = new C!(new ArrayBuffer(n * C!.BYTES_PER_ELEMENT), 0, n);
  const raw = new Uint8Array(t.buffer);
  for (let i = 0; i < raw.length; i++) raw[i] = (r() * 256) | 0;
  return t;
}

/** A random message whose tensors hold `tensorBytes` bytes in total, split into 1-4 arrays. */
function randomMessage(r: Rand, tensorBytes: number, depth = 0): Record<string, unknown> {
  const msg: Record<string, unknown> = { type: `m${int(r, 100)}` };
  const parts = tensorBytes > 0 ? 1 + int(r, 4) : 0;
  let left = tensorBytes;
  for (let i = 0; i < parts; i++) {
    const share = i === parts - 1 ? left : Math.floor(left * r());
    left -= share;
    const t = randomTensor(r, share);
    // Tensors sit at random depths: top level, in nested objects, in arrays.
    if (depth < 3 && r() < 0.3) msg[`n${i}`] = { ...randomMessage(r, 0, depth + 1), t };
    else if (r() < 0.3) msg[`l${i}`] = [randomNumber(r), t, randomString(r)];
    else msg[`t${i}`] = t;
  }
  const extras = int(r, 5);
  for (let i = 0; i < extras; i++) {
    const k = `k${i}`;
    const v = int(r, 6);
    if (v === 0) msg[k] = randomString(r);
    else if (v === 1) msg[k] = randomNumber(r);
    else if (v === 2) msg[k] = [randomNumber(r), randomString(r), r() < 0.5, null];
    else if (v === 3 && depth < 3) msg[k] = randomMessage(r, 0, depth + 1);
    else msg[k] = randomString(r);
  }
  msg.tail = randomString(r); // a string after the tensors, written into whatever buffer follows them
  return msg;
}

/** Path of the first difference between two decoded values, or null. Typed arrays compare bytes. */
function diff(a: unknown, b: unknown, path = "$"): string | null {
  if (ArrayBuffer.isView(a) || ArrayBuffer.isView(b)) {
    if (!ArrayBuffer.isView(a) || !ArrayBuffer.isView(b)) return `${path}: typed array vs other`;
    if (a.constructor !== b.constructor) return `${path}: ${a.constructor.name} vs ${b.constructor.name}`;
    if (a.byteLength !== b.byteLength) return `${path}: ${a.byteLength} vs ${b.byteLength} bytes`;
    const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return `${path}[byte ${i}]`;
    return null;
  }
  if (a && b && typeof a === "object" && typeof b === "object") {
    if (Array.isArray(a) !== Array.isArray(b)) return `${path}: array vs object`;
    const ka = Object.keys(a), kb = Object.keys(b);
    if (ka.length !== kb.length) return `${path}: keys ${ka} vs ${kb}`;
    for (const k of ka) {
      const d = diff((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`);
      if (d) return d;
    }
    return null;
  }
  return Object.is(a, b) ? null : `${path}: ${String(a).slice(0, 40)} vs ${String(b).slice(0, 40)}`;
}

/** Sizes around every power of two from 1 KiB to 4 MiB (just under, at, just over), shuffled. */
function sizes(r: Rand): number[] {
  const out: number[] = [];
  for (let p = 10; p <= 22; p++) for (const d of [-17, 0, 9]) out.push(2 ** p + d);
  for (let i = out.length - 1; i > 0; i--) {
    const j = int(r, i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe("codec: property round trip", () => {
  test("random messages around every power of two, interleaved, via encode and encodeOwned", () => {
    const r = rng(SEED);
    const kept: { bytes: Uint8Array; msg: unknown }[] = []; // earlier encode() results must stay intact
    sizes(r).forEach((size, i) => {
      for (const [label, bytesOf] of [["encode", encode], ["encodeOwned", encodeOwned]] as const) {
        const msg = randomMessage(r, size);
        const bytes = bytesOf(msg);
        expect(diff(msg, decode(bytes)), `case ${i} ${label} size ${size}`).toBeNull();
        if (label === "encodeOwned") structuredClone(bytes, { transfer: [bytes.buffer as ArrayBuffer] });
        else if (size < 1 << 16) kept.push({ bytes, msg });
        // A small frame with a long string right after a big one (issue 13 item 5).
        const small = { type: "small", id: randomString(r), s: "r".repeat(64 + int(r, 200)) };
        expect(diff(small, decode(encodeOwned(small))), `case ${i} small after ${label}`).toBeNull();
        expect(diff(small, decode(encode(small))), `case ${i} small after ${label}`).toBeNull();
      }
    });
    kept.forEach(({ bytes, msg }, i) => expect(diff(msg, decode(bytes)), `kept ${i}`).toBeNull());
  }, 120_000);
});
