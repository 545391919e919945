// Bad checkpoints get a clear error naming the file and the tensor; good ones map lazily.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openCheckpoint } from "../../src/checkpoint/checkpoint.ts";
import { parseModelConfig } from "../../src/config/model.ts";
import { DirectBackend } from "../../src/engine/direct.ts";

const SRC = new URL("../fixtures/tiny-dsv3", import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), "moe-ckpt-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let n = 0;
function copy(): string {
  const dir = join(tmp, `c${n++}`);
  cpSync(SRC, dir, { recursive: true });
  return dir;
}

/** Rewrites a shard's header JSON in place (same length, so offsets stay valid). */
function editHeader(file: string, edit: (h: string) => string) {
  const buf = readFileSync(file);
  const len = Number(buf.readBigUInt64LE(0));
  const h = buf.subarray(8, 8 + len).toString("utf8");
  const e = edit(h);
  if (Buffer.byteLength(e) !== len) throw new Error("edit changed the header length");
  buf.write(e, 8, "utf8");
  writeFileSync(file, buf);
}

const load = (dir: string) => () => new DirectBackend(dir, { pages: 4, pageSize: 16 });

describe("checkpoint errors", () => {
  test("a missing tensor is named", () => {
    const dir = copy();
    const idx = JSON.parse(readFileSync(join(dir, "model.safetensors.index.json"), "utf8"));
    delete idx.weight_map["model.layers.1.self_attn.kv_b_proj.weight"];
    writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify(idx));
    expect(load(dir)).toThrow(/tensor model\.layers\.1\.self_attn\.kv_b_proj\.weight is missing/);
  });

  test("a wrong shape names file, tensor and both shapes", () => {
    const dir = copy();
    const cfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
    cfg.kv_lora_rank = 48;
    writeFileSync(join(dir, "config.json"), JSON.stringify(cfg));
    expect(load(dir)).toThrow(/model-0000\d-of-00003\.safetensors: tensor model\.layers\.0\.self_attn\.kv_a_proj_with_mqa\.weight has shape \[80,128\], expected \[64,128\]/);
  });

  test("a truncated shard is caught at open, naming file and tensor", () => {
    const dir = copy();
    const f = join(dir, "model-00002-of-00003.safetensors");
    truncateSync(f, readFileSync(f).length - 1000);
    expect(load(dir)).toThrow(/model-00002-of-00003\.safetensors: tensor .* lies beyond the data section/);
  });

  test("a header whose offsets lie is caught", () => {
    const dir = copy();
    editHeader(join(dir, "model-00001-of-00003.safetensors"), (h) => h.replace(/"data_offsets":\[(\d+),(\d+)\]/, (_m, a, b) => `"data_offsets":[${a},${String(Number(b) - 1).padStart(b.length, "0")}]`));
    expect(load(dir)).toThrow(/model-00001-of-00003\.safetensors: tensor .*data_offsets/);
  });

  test("an unknown dtype is named", () => {
    const dir = copy();
    editHeader(join(dir, "model-00001-of-00003.safetensors"), (h) => h.replace('"BF16"', '"BX16"'));
    expect(load(dir)).toThrow(/model-00001-of-00003\.safetensors: tensor .*: unknown dtype "BX16"/);
  });

  test("a header that is not JSON", () => {
    const dir = copy();
    editHeader(join(dir, "model-00003-of-00003.safetensors"), (h) => `!${h.slice(1)}`);
    expect(load(dir)).toThrow(/model-00003-of-00003\.safetensors: header is not valid JSON/);
  });

  test("a config that fails validation names the field", () => {
    const dir = copy();
    const cfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
    cfg.n_group = 3;
    cfg.hidden_sise = 1;
    writeFileSync(join(dir, "config.json"), JSON.stringify(cfg));
    expect(load(dir)).toThrow(/config\.json: invalid model config: .*n_group.*hidden_sise|config\.json: invalid model config: .*hidden_sise/);
  });

  test("a missing directory", () => {
    expect(load(join(tmp, "nope"))).toThrow(/does not exist/);
  });
});

describe("checkpoint loading", () => {
  test("read-only shards are read (weights are never mapped from the shards)", () => {
    const dir = copy();
    for (const f of ["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"]) chmodSync(join(dir, f), 0o444);
    const ck = openCheckpoint(dir);
    const w = ck.weight("model.layers.0.self_attn.q_a_proj.weight", [64, 128]);
    expect(w.dtype).toBe(2);
    expect(w.scale?.length).toBe(1);
    expect(w.data.byteLength).toBe(64 * 128);
  });

  test("the real DeepSeek-V3 671B config parses", () => {
    const raw = JSON.parse(readFileSync(new URL("../fixtures/configs/deepseek-v3-671b.config.json", import.meta.url), "utf8"));
    const c = parseModelConfig(raw);
    expect(c.n_routed_experts).toBe(256);
    expect(c.fp8).toBe(true);
    expect(c.softmax_scale).toBeCloseTo(0.1352337788608801, 12);
  });

  test("q_lora_rank null (V2-Lite style) is accepted", () => {
    const raw = JSON.parse(readFileSync(join(SRC, "config.json"), "utf8"));
    raw.q_lora_rank = null;
    expect(parseModelConfig(raw).q_lora_rank).toBeNull();
  });
});
