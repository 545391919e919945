// Number formats for the GGUF converter: checkpoint weights (FP8 E4M3 with 128x128 block scales,
// BF16, F32) to f32, and f32 to the GGUF types (F32, BF16, Q8_0 as ggml's quantize_row_q8_0_ref:
// blocks of 32, fp16 d = max|x|/127, int8 q = round(x/d), halves away from zero).
import { type Weight, WDTYPE } from "../../src/checkpoint/checkpoint.ts";
import { E4M3_VALUES, toBf16 } from "../../src/checkpoint/writer.ts";
import { GGML, type GgmlType, rowBytes } from "./format.ts";

/** Rows [r0, r1) of a 2-D checkpoint weight (a vector is one row) as f32, scales applied. */
export function decodeRows(w: Weight, r0 = 0, r1 = w.shape.length === 2 ? w.shape[0] : 1): Float32Array {
  const cols = w.shape.length === 2 ? w.shape[1] : w.shape[0];
  const out = new Float32Array((r1 - r0) * cols);
  if (w.dtype === WDTYPE.F32) {
    const src = new Float32Array(w.data.slice(r0 * cols * 4, r1 * cols * 4).buffer);
    out.set(src);
  } else if (w.dtype === WDTYPE.BF16) {
    const u32 = new Uint32Array(out.buffer);
    const src = w.data;
    for (let i = 0, j = r0 * cols * 2; i < out.length; i++, j += 2) u32[i] = ((src[j + 1] << 8) | src[j]) << 16;
  } else {
    const scale = w.scale as Float32Array, sCols = Math.ceil(cols / 128), src = w.data;
    for (let r = r0; r < r1; r++) {
      const base = (r - r0) * cols, srow = Math.floor(r / 128) * sCols;
      for (let c = 0; c < cols; c++) out[base + c] = E4M3_VALUES[src[r * cols + c]] * scale[srow + (c >> 7)];
    }
  }
  return out;
}

/** f32 values (whole rows) in a GGUF type. */
export function encode(type: GgmlType, x: Float32Array, rowLen: number): Uint8Array {
  if (x.length % rowLen !== 0) throw new Error(`encode: ${x.length} values are not whole rows of ${rowLen}`);
  const out = new Uint8Array(rowBytes(type, rowLen) * (x.length / rowLen));
  switch (type) {
    case GGML.F32: out.set(new Uint8Array(x.buffer, x.byteOffset, x.byteLength)); break;
    case GGML.BF16: {
      const u16 = new Uint16Array(out.buffer);
      for (let i = 0; i < x.length; i++) u16[i] = toBf16(x[i]);
      break;
    }
    case GGML.Q8_0: q8_0(x, out); break;
    default: throw new Error(`encode: ggml type ${type} is not supported`);
  }
  return out;
}

function q8_0(x: Float32Array, out: Uint8Array): void {
  const q = new Int8Array(out.buffer, out.byteOffset, out.length);
  const h = new Float16Array(1), hBytes = new Uint8Array(h.buffer);
  for (let b = 0, o = 0; b < x.length; b += 32, o += 34) {
    let amax = 0;
    for (let i = 0; i < 32; i++) {
      const a = Math.abs(x[b + i]);
      if (a > amax) amax = a;
    }
    const d = Math.fround(amax / 127), id = d ? Math.fround(1 / d) : 0;
    h[0] = d; // round to nearest even, as GGML_FP32_TO_FP16
    out[o] = hBytes[0];
    out[o + 1] = hBytes[1];
    for (let i = 0; i < 32; i++) {
      const v = Math.fround(x[b + i] * id);
      q[o + 2 + i] = v >= 0 ? Math.floor(v + 0.5) : -Math.floor(0.5 - v); // roundf: halves away from zero
    }
  }
}

/** The weight re-encoded; BF16 to BF16 passes the stored bits through unchanged. */
export function convertRows(w: Weight, type: GgmlType, r0?: number, r1?: number): Uint8Array {
  const cols = w.shape.length === 2 ? w.shape[1] : w.shape[0];
  if (type === GGML.BF16 && w.dtype === WDTYPE.BF16) {
    const a = (r0 ?? 0) * cols * 2, b = r1 === undefined ? w.data.length : r1 * cols * 2;
    return w.data.subarray(a, b);
  }
  return encode(type, decodeRows(w, r0, r1), cols);
}
