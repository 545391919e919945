// Reads a fixture's golden outputs (golden.safetensors + golden.json) for the tests.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { SafetensorsFile } from "../../src/checkpoint/safetensors.ts";

export class Golden {
  private readonly file: SafetensorsFile;
  readonly json: any;

  constructor(readonly dir: string) {
    this.file = new SafetensorsFile(join(dir, "golden", "golden.safetensors"));
    this.json = JSON.parse(readFileSync(join(dir, "golden", "golden.json"), "utf8"));
  }

  has(name: string): boolean {
    return this.file.tensors.has(name);
  }

  shape(name: string): readonly number[] {
    return this.info(name).shape;
  }

  private info(name: string) {
    const t = this.file.tensors.get(name);
    if (!t) throw new Error(`golden tensor ${name} missing`);
    return t;
  }

  f32(name: string): Float32Array {
    const t = this.info(name);
    if (t.dtype !== "F32") throw new Error(`${name} is ${t.dtype}`);
    return new Float32Array(this.file.bytes(t).slice().buffer);
  }

  ids(name: string): number[] {
    const t = this.info(name);
    const b = this.file.bytes(t).slice().buffer;
    if (t.dtype === "I64") return Array.from(new BigInt64Array(b), Number);
    if (t.dtype === "I32") return Array.from(new Int32Array(b));
    throw new Error(`${name} is ${t.dtype}`);
  }
}

/** max |a - b| / (atol + rtol |b|) <= 1 ? Returns the worst excess and where. */
export function compare(a: ArrayLike<number>, b: ArrayLike<number>, atol: number, rtol = 0) {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let worst = 0, at = -1, maxAbs = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    maxAbs = Math.max(maxAbs, d);
    const r = d / (atol + rtol * Math.abs(b[i]));
    if (!(r <= worst)) { worst = r; at = i; }
  }
  return { ok: worst <= 1, worst, at, maxAbs };
}
