// make-model writes bench-s in both formats; an independent reader here checks the on-disk format.
import { beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeModelCommand } from "../../src/commands/make-model.ts";
import { presetSpec } from "../../src/checkpoint/presets.ts";
import { toE4M3, writeCheckpoint } from "../../src/checkpoint/writer.ts";
import { parseModelConfig } from "../../src/config/model.ts";
import { openCheckpoint } from "../../src/checkpoint/checkpoint.ts";

type Info = { dtype: string; shape: number[]; data_offsets: [number, number] };
type Shard = { file: string; headerLen: number; header: Record<string, any>; // Info, plus __metadata__
  raw: Uint8Array; data: Uint8Array };
type Model = { dir: string; config: Record<string, any>; index: { metadata: { total_size: number }; weight_map: Record<string, string> }; shards: Shard[]; t: Map<string, { info: Info; bytes: Uint8Array; shard: string }> };

/** Plain safetensors parsing, not the project's loader. */
function readModel(dir: string): Model {
  const json = (f: string) => JSON.parse(readFileSync(join(dir, f), "utf8"));
  const index = json("model.safetensors.index.json");
  const shards = [...new Set(Object.values(index.weight_map) as string[])].sort().map((file): Shard => {
    const raw = new Uint8Array(readFileSync(join(dir, file)));
    const headerLen = Number(new DataView(raw.buffer).getBigUint64(0, true));
    const text = new TextDecoder().decode(raw.subarray(8, 8 + headerLen));
    return { file, headerLen, header: JSON.parse(text), raw, data: raw.subarray(8 + headerLen) };
  });
  const t = new Map<string, { info: Info; bytes: Uint8Array; shard: string }>();
  for (const s of shards)
    for (const [name, info] of Object.entries(s.header))
      if (name !== "__metadata__") t.set(name, { info, bytes: s.data.subarray(info.data_offsets[0], info.data_offsets[1]), shard: s.file });
  return { dir, config: json("config.json"), index, shards, t };
}

// Independent number formats: e4m3fn by its definition, bf16 by RNE on the f32 bits.
const e4m3 = (c: number) => {
  const e = (c >> 3) & 15, m = c & 7, v = e === 0 ? m / 8 * 2 ** -6 : (1 + m / 8) * 2 ** (e - 7);
  return c & 0x80 ? -v : v;
};
const scratchF = new Float32Array(1), scratchU = new Uint32Array(scratchF.buffer);
const bf16rne = (x: number) => { scratchF[0] = x; const b = scratchU[0]; return (b + 0x7fff + ((b >>> 16) & 1)) >>> 16; };
const u16 = (b: Uint8Array) => new Uint16Array(b.slice().buffer);
const f32 = (b: Uint8Array) => new Float32Array(b.slice().buffer);
const bf16val = (h: number) => { scratchU[0] = h << 16; return scratchF[0]; };

/** Expected tensors from config.json alone: name -> [shape, kind]. */
function expected(c: Record<string, any>, ehFp8 = false): Map<string, [number[], "proj" | "bf16" | "f32"]> {
  const m = new Map<string, [number[], "proj" | "bf16" | "f32"]>(), d = c.hidden_size, H = c.num_attention_heads;
  const mlp = (p: string, n: number) => { m.set(`${p}gate_proj.weight`, [[n, d], "proj"]); m.set(`${p}up_proj.weight`, [[n, d], "proj"]); m.set(`${p}down_proj.weight`, [[d, n], "proj"]); };
  m.set("model.embed_tokens.weight", [[c.vocab_size, d], "bf16"]); m.set("lm_head.weight", [[c.vocab_size, d], "bf16"]); m.set("model.norm.weight", [[d], "bf16"]);
  for (let i = 0; i < c.num_hidden_layers + c.num_nextn_predict_layers; i++) {
    const p = `model.layers.${i}.`, a = `${p}self_attn.`, qk = c.qk_nope_head_dim + c.qk_rope_head_dim;
    for (const n of ["input_layernorm", "post_attention_layernorm"]) m.set(`${p}${n}.weight`, [[d], "bf16"]);
    if (c.q_lora_rank === null) m.set(`${a}q_proj.weight`, [[H * qk, d], "proj"]);
    else { m.set(`${a}q_a_proj.weight`, [[c.q_lora_rank, d], "proj"]); m.set(`${a}q_a_layernorm.weight`, [[c.q_lora_rank], "bf16"]); m.set(`${a}q_b_proj.weight`, [[H * qk, c.q_lora_rank], "proj"]); }
    m.set(`${a}kv_a_proj_with_mqa.weight`, [[c.kv_lora_rank + c.qk_rope_head_dim, d], "proj"]);
    m.set(`${a}kv_a_layernorm.weight`, [[c.kv_lora_rank], "bf16"]);
    m.set(`${a}kv_b_proj.weight`, [[H * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank], "proj"]);
    m.set(`${a}o_proj.weight`, [[d, H * c.v_head_dim], "proj"]);
    if (i < c.first_k_dense_replace) { mlp(`${p}mlp.`, c.intermediate_size); continue; }
    m.set(`${p}mlp.gate.weight`, [[c.n_routed_experts, d], "bf16"]); m.set(`${p}mlp.gate.e_score_correction_bias`, [[c.n_routed_experts], "f32"]);
    for (let e = 0; e < c.n_routed_experts; e++) mlp(`${p}mlp.experts.${e}.`, c.moe_intermediate_size);
    mlp(`${p}mlp.shared_experts.`, c.n_shared_experts * c.moe_intermediate_size);
    if (i < c.num_hidden_layers) continue;
    for (const n of ["enorm", "hnorm", "shared_head.norm"]) m.set(`${p}${n}.weight`, [[d], "bf16"]);
    m.set(`${p}eh_proj.weight`, [[d, 2 * d], ehFp8 ? "proj" : "bf16"]);
    m.set(`${p}embed_tokens.weight`, [[c.vocab_size, d], "bf16"]); m.set(`${p}shared_head.head.weight`, [[c.vocab_size, d], "bf16"]);
  }
  return m;
}

function checkFp8Tensor(m: Model, name: string, shape: number[]): void {
  const w = m.t.get(name)!, s = m.t.get(`${name}_scale_inv`)!;
  expect([w.info.dtype, s.info.dtype]).toEqual(["F8_E4M3", "F32"]);
  const [R, C] = shape, br = Math.ceil(R / 128), bc = Math.ceil(C / 128);
  expect(s.info.shape).toEqual([br, bc]);
  const scales = f32(s.bytes), has448 = new Uint8Array(br * bc);
  for (let i = 0; i < R * C; i++) {
    const code = w.bytes[i], blk = Math.floor(i / C / 128) * bc + Math.floor((i % C) / 128);
    if ((code & 0x7f) === 0x7f) throw new Error(`${name}: NaN code at ${i}`);
    if ((code & 0x7f) === 0x7e) has448[blk] = 1;
  }
  expect(has448.every((x) => x === 1)).toBe(true);
  expect(scales.every((x) => Number.isFinite(x) && x > 0)).toBe(true);
}

const dirs = { fp8: "", bf16: "", other: "" };
let fp8: Model, bf16: Model;
beforeAll(async () => {
  for (const k of ["fp8", "bf16", "other"] as const) dirs[k] = mkdtempSync(join(tmpdir(), `make-model-${k}-`));
  await makeModelCommand(["--preset", "bench-s", "--format", "fp8", "--seed", "7", "--out", dirs.fp8, "--quiet"]);
  await makeModelCommand(["--preset", "bench-s", "--format", "bf16", "--seed", "7", "--out", dirs.bf16, "--quiet"]);
  await writeCheckpoint(dirs.other, presetSpec("bench-s"), { format: "fp8", seed: 8 });
  [fp8, bf16] = [readModel(dirs.fp8), readModel(dirs.bf16)];
});

describe("make-model bench-s", () => {
  test("config.json: preset dims, real field names, quantization_config only for fp8; the schema accepts both", () => {
    const spec = presetSpec("bench-s");
    for (const [k, v] of Object.entries(spec)) expect(fp8.config[k]).toEqual(v);
    expect(fp8.config).toMatchObject({ model_type: "deepseek_v3", topk_method: "noaux_tc", scoring_func: "sigmoid", norm_topk_prob: true, q_lora_rank: null, tie_word_embeddings: false });
    expect(fp8.config.quantization_config).toEqual({ activation_scheme: "dynamic", fmt: "e4m3", quant_method: "fp8", weight_block_size: [128, 128] });
    expect("quantization_config" in bf16.config).toBe(false);
    expect(parseModelConfig(fp8.config).fp8).toBe(true);
    expect(parseModelConfig(bf16.config).fp8).toBe(false);
    for (const f of ["tokenizer.json", "tokenizer_config.json"]) expect(readFileSync(join(dirs.fp8, f))).toEqual(readFileSync(join(import.meta.dir, "../../models/fortune-dsv3", f)));
    expect(JSON.parse(readFileSync(join(dirs.fp8, "generation_config.json"), "utf8"))).toMatchObject({ bos_token_id: 0, eos_token_id: 1 });
  });

  test("shards: padded header, __metadata__, data contiguous in sorted name order, index complete", () => {
    for (const m of [fp8, bf16]) {
      expect(m.shards.map((s) => s.file)).toEqual([1, 2, 3].map((k) => `model-0000${k}-of-00003.safetensors`));
      let total = 0;
      for (const s of m.shards) {
        expect(s.headerLen % 8).toBe(0);
        const text = new TextDecoder().decode(s.raw.subarray(8, 8 + s.headerLen));
        expect(text.trimEnd().endsWith("}")).toBe(true);
        expect(/^[^ ]*\}\s*$/.test(text.slice(text.trimEnd().length - 1))).toBe(true); // only spaces pad it
        expect(s.header.__metadata__).toEqual({ format: "pt" });
        const names = Object.keys(s.header).filter((n) => n !== "__metadata__");
        expect(names).toEqual([...names].sort());
        let off = 0;
        for (const n of names) { expect(s.header[n].data_offsets[0]).toBe(off); off = s.header[n].data_offsets[1]; }
        expect(off).toBe(s.data.length);
        expect(statSync(join(m.dir, s.file)).size).toBe(8 + s.headerLen + off);
        total += off;
      }
      expect(m.index.metadata.total_size).toBe(total);
      expect(Object.keys(m.index.weight_map).sort()).toEqual([...m.t.keys()].sort());
      for (const [n, f] of Object.entries(m.index.weight_map)) expect(m.t.get(n)!.shard).toBe(f);
    }
  });

  test("names, shapes and dtypes as config.json implies; MTP alone in the last shard", () => {
    const exp = expected(fp8.config);
    const fp8Names = [...exp].flatMap(([n, [, k]]) => (k === "proj" ? [n, `${n}_scale_inv`] : [n]));
    expect([...fp8.t.keys()].sort()).toEqual(fp8Names.sort());
    expect([...bf16.t.keys()].sort()).toEqual([...exp.keys()].sort());
    for (const [n, [shape, kind]] of exp) {
      expect(fp8.t.get(n)!.info.shape).toEqual(shape);
      expect(fp8.t.get(n)!.info.dtype).toBe(kind === "proj" ? "F8_E4M3" : kind === "f32" ? "F32" : "BF16");
      expect(bf16.t.get(n)!.info).toMatchObject({ shape, dtype: kind === "f32" ? "F32" : "BF16" });
    }
    for (const m of [fp8, bf16]) {
      const inShard = (k: number) => Object.keys(m.shards[k].header).filter((n) => n !== "__metadata__");
      expect(inShard(2).every((n) => n.startsWith("model.layers.3."))).toBe(true);
      expect([...m.t.keys()].filter((n) => n.startsWith("model.layers.3.")).length).toBe(inShard(2).length);
      expect(inShard(0).some((n) => n.startsWith("model.layers.2."))).toBe(false);
    }
  });

  test("FP8: every 128x128 block (partial ones too) has a +-448 code; scale_inv [ceil(out/128), ceil(in/128)]", () => {
    const projs = [...expected(fp8.config)].filter(([, [, k]]) => k === "proj");
    expect(projs.some(([, [[r, c]]]) => r % 128 !== 0 && c % 128 !== 0)).toBe(true); // bench-s has partial blocks both ways
    for (const [n, [shape]] of projs) checkFp8Tensor(fp8, n, shape);
  });

  test("BF16 = RNE-bf16(f32 dequant(FP8)) bit-exact; other tensors byte-identical", () => {
    for (const [n, [shape, kind]] of expected(fp8.config)) {
      const b = bf16.t.get(n)!.bytes;
      if (kind !== "proj") { expect(Buffer.from(b).equals(Buffer.from(fp8.t.get(n)!.bytes))).toBe(true); continue; }
      const codes = fp8.t.get(n)!.bytes, scales = f32(fp8.t.get(`${n}_scale_inv`)!.bytes), got = u16(b), C = shape[1];
      for (let i = 0; i < codes.length; i++) {
        const s = scales[Math.floor(i / C / 128) * Math.ceil(C / 128) + Math.floor((i % C) / 128)];
        if (got[i] !== bf16rne(Math.fround(e4m3(codes[i]) * s))) throw new Error(`${n}[${i}] differs`);
      }
    }
  });

  test("MTP embed_tokens / shared_head.head are byte-identical copies of the main ones", () => {
    for (const m of [fp8, bf16]) {
      expect(Buffer.from(m.t.get("model.layers.3.embed_tokens.weight")!.bytes).equals(Buffer.from(m.t.get("model.embed_tokens.weight")!.bytes))).toBe(true);
      expect(Buffer.from(m.t.get("model.layers.3.shared_head.head.weight")!.bytes).equals(Buffer.from(m.t.get("lm_head.weight")!.bytes))).toBe(true);
    }
  });

  test("init statistics follow the README", () => {
    const stat = (name: string) => {
      const v = Float64Array.from(u16(bf16.t.get(name)!.bytes), bf16val), mean = v.reduce((a, b) => a + b, 0) / v.length;
      return { mean, std: Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length), min: v.reduce((a, b) => Math.min(a, b)), max: v.reduce((a, b) => Math.max(a, b)) };
    };
    const near = (x: number, want: number, rel: number) => expect(Math.abs(x / want - 1)).toBeLessThan(rel);
    near(stat("model.embed_tokens.weight").std, 1, 0.02);
    near(stat("lm_head.weight").std, 1 / 16, 0.02);
    near(stat("model.layers.1.mlp.experts.0.down_proj.weight").std, 1 / Math.sqrt(96), 0.05);
    near(stat("model.layers.0.mlp.gate_proj.weight").std, 1 / 16, 0.05);
    near(stat("model.layers.2.mlp.gate.weight").std, 1 / 16, 0.1);
    const norm = stat("model.layers.1.input_layernorm.weight");
    expect(norm.min).toBeGreaterThanOrEqual(0.8); expect(norm.max).toBeLessThanOrEqual(1.2); near(norm.mean, 1, 0.03);
    const bias = [1, 2, 3].flatMap((l) => [...f32(bf16.t.get(`model.layers.${l}.mlp.gate.e_score_correction_bias`)!.bytes)]);
    const bstd = Math.sqrt(bias.reduce((a, b) => a + b * b, 0) / bias.length);
    expect(bstd).toBeGreaterThan(0.03); expect(bstd).toBeLessThan(0.08);
  });

  test("seeded: another seed changes every tensor's data but not the layout", () => {
    const other = readModel(dirs.other);
    expect(other.shards.map((s) => s.headerLen)).toEqual(fp8.shards.map((s) => s.headerLen));
    for (const [n, t] of other.t) expect(Buffer.from(t.bytes).equals(Buffer.from(fp8.t.get(n)!.bytes))).toBe(false);
  });

  test("the project's loader opens both and finds every tensor", () => {
    for (const dir of [dirs.fp8, dirs.bf16]) {
      const ck = openCheckpoint(dir);
      for (const [n, [shape]] of expected(fp8.config)) expect(ck.weight(n, shape).shape).toEqual(shape);
    }
  });
});

describe("make-model options and errors", () => {
  test("--layers and --fp8-eh-proj", async () => {
    const dir = mkdtempSync(join(tmpdir(), "make-model-l1-"));
    await makeModelCommand(["--preset", "bench-s", "--layers", "1", "--fp8-eh-proj", "--out", dir, "--quiet"]);
    const m = readModel(dir);
    expect([m.config.num_hidden_layers, m.config.first_k_dense_replace]).toEqual([1, 1]);
    expect([...m.t.keys()].sort()).toEqual([...expected(m.config, true)].flatMap(([n, [, k]]) => (k === "proj" ? [n, `${n}_scale_inv`] : [n])).sort());
    checkFp8Tensor(m, "model.layers.1.eh_proj.weight", [256, 512]);
  });

  test("bad arguments are clear errors", async () => {
    const out = ["--out", join(tmpdir(), "never-written")];
    await expect(makeModelCommand(["--preset", "huge", ...out])).rejects.toThrow(/preset/);
    await expect(makeModelCommand(["--preset", "bench-s", "--format", "fp4", ...out])).rejects.toThrow(/--format/);
    await expect(makeModelCommand(["--preset", "bench-s"])).rejects.toThrow(/--out/);
    await expect(makeModelCommand(["--preset", "bench-s", "--seed", "-1", ...out])).rejects.toThrow(/--seed/);
    await expect(makeModelCommand(["--preset", "bench-s", "--bogus", ...out])).rejects.toThrow(/bogus/);
  });

  test("toE4M3 rounds to nearest even and saturates at 448", () => {
    for (let c = 0; c < 0x7e; c++) {
      expect(toE4M3(e4m3(c))).toBe(c);
      expect(toE4M3(-e4m3(c))).toBe(c | 0x80);
      const mid = (e4m3(c) + e4m3(c + 1)) / 2; // exact in f32
      expect(toE4M3(mid)).toBe(c % 2 === 0 ? c : c + 1);
      expect(toE4M3(Math.fround(mid * (1 + 2 ** -20)))).toBe(c + 1);
    }
    expect(toE4M3(448.01)).toBe(0x7e);
  });

  test("this test's reader agrees with the oracle fixtures: tiny-dsv3-bf16 = RNE-bf16(dequant(tiny-dsv3))", () => {
    const [q, b] = ["tiny-dsv3", "tiny-dsv3-bf16"].map((f) => readModel(join(import.meta.dir, "../fixtures", f)));
    let n = 0;
    for (const [name, t] of q.t) {
      if (t.info.dtype !== "F8_E4M3") continue;
      checkFp8Tensor(q, name, t.info.shape);
      const scales = f32(q.t.get(`${name}_scale_inv`)!.bytes), got = u16(b.t.get(name)!.bytes), C = t.info.shape[1];
      for (let i = 0; i < t.bytes.length; i++)
        if (got[i] !== bf16rne(Math.fround(e4m3(t.bytes[i]) * scales[Math.floor(i / C / 128) * Math.ceil(C / 128) + Math.floor((i % C) / 128)]))) throw new Error(name);
      n++;
    }
    expect(n).toBeGreaterThan(100);
  });
});
