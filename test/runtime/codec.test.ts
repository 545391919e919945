import { describe, expect, test } from "bun:test";
import { TYPED_ARRAYS, decode, encode, encodeOwned } from "../../src/runtime/codec.ts";

type Ctor = { new (n: number): ArrayBufferView & ArrayLike<number | bigint> & { [i: number]: number | bigint }; name: string };

function sample(C: Ctor, n: number) {
  const a = new C(n);
  const big = C.name.startsWith("Big");
  for (let i = 0; i < n; i++) a[i] = big ? BigInt(i * 3 + 1) : ((i * 7 + 1) % 100) - (C.name.startsWith("Int") || C.name.startsWith("Float") ? 50 : 0);
  return a;
}

describe("codec", () => {
  for (const C of TYPED_ARRAYS) {
    if (!C) continue;
    test(`round-trips ${C.name}, as a view on the received bytes`, () => {
      const a = sample(C as unknown as Ctor, 37);
      const bytes = encode({ type: "t", a });
      const out = decode(bytes) as { type: string; a: typeof a };
      expect(out.a.constructor).toBe(C);
      expect(Array.from(out.a as ArrayLike<unknown>)).toEqual(Array.from(a as ArrayLike<unknown>));
      expect(out.a.buffer).toBe(bytes.buffer); // no copy
    });
  }

  test("nested objects, arrays, nulls, strings, numbers and empty arrays", () => {
    const msg = {
      type: "expert_run",
      layer: 3,
      name: "ünïcode ✓",
      ok: true,
      none: null,
      ids: [1, 2, 3],
      nested: { x: new Float32Array([1.5, -2]), list: [new Int32Array([7]), { y: new Float64Array([Math.PI]) }] },
      empty: new Float32Array(0),
      bytes: new Uint8Array([0, 255]),
    };
    const out = decode(encode(msg));
    expect(out).toEqual(msg);
  });

  test("a misaligned arrival is copied into an aligned array, with the right values", () => {
    const a = new Float64Array([1, 2, 3]);
    const bytes = encode({ a });
    const shifted = new Uint8Array(bytes.byteLength + 3);
    shifted.set(bytes, 3);
    const out = decode(shifted.subarray(3)) as { a: Float64Array };
    expect(Array.from(out.a)).toEqual([1, 2, 3]);
    expect(out.a.buffer).not.toBe(shifted.buffer);
    expect(out.a.byteOffset % 8).toBe(0);
  });

  test("typed array views into a larger buffer encode only their own elements", () => {
    const base = new Float32Array([9, 1, 2, 3, 9]);
    const view = base.subarray(1, 4);
    expect(Array.from((decode(encode({ v: view })) as { v: Float32Array }).v)).toEqual([1, 2, 3]);
  });

  test("encodeOwned: small and large messages own their buffer; earlier encodings stay intact", () => {
    const kept = encode({ type: "kept", v: new Float32Array([4, 5]) });
    const big = new Float32Array(1 << 18).fill(0.5);
    for (const msg of [{ type: "s" }, { type: "big", big }, { type: "big2", big }]) {
      const bytes = encodeOwned(msg);
      expect(bytes.buffer).not.toBe(kept.buffer);
      structuredClone(bytes, { transfer: [bytes.buffer as ArrayBuffer] }); // detaches it
    }
    expect(decode(kept)).toEqual({ type: "kept", v: new Float32Array([4, 5]) });
    const again = decode(encodeOwned({ type: "big", big })) as { big: Float32Array };
    expect(again.big.length).toBe(1 << 18);
    expect(again.big[12345]).toBe(0.5);
  });

  test("a 64+ char string after a large tensor frame encodes (issue 13 item 5)", () => {
    encodeOwned({ type: "logprobs", v: new Float32Array(1 << 14) }); // exactly 64 KiB of tensor data
    const id = "r".repeat(64) + "-ünï✓";
    expect(decode(encodeOwned({ type: "req", id }))).toEqual({ type: "req", id });
    expect(decode(encode({ type: "req", id }))).toEqual({ type: "req", id });
  });
});
