// The checkpoint index comes with a downloaded model: it must not make the server read files
// outside the model directory, by relative path, absolute path or symlink (issue 13 item 11).
// A Hugging Face hub cache snapshot (files linked to ../../blobs/) still loads.
import { afterAll, describe, expect, test } from "bun:test";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openCheckpoint } from "../../src/checkpoint/checkpoint.ts";

const SRC = new URL("../fixtures/tiny-dsv3", import.meta.url).pathname;
const INDEX = "model.safetensors.index.json";
const SHARD = "model-00002-of-00003.safetensors";
const tmp = mkdtempSync(join(tmpdir(), "moe-contain-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let n = 0;
function copy(): string {
  const dir = join(tmp, `c${n++}`, "model");
  cpSync(SRC, dir, { recursive: true });
  return dir;
}

/** Points the first tensor of SHARD at `file` in the index; returns that tensor's name. */
function redirect(dir: string, file: string): string {
  const idx = JSON.parse(readFileSync(join(dir, INDEX), "utf8")) as { weight_map: Record<string, string> };
  const name = Object.keys(idx.weight_map).find((k) => idx.weight_map[k] === SHARD)!;
  idx.weight_map[name] = file;
  writeFileSync(join(dir, INDEX), JSON.stringify(idx));
  return name;
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

describe("checkpoint containment", () => {
  for (const file of ["../../etc/passwd", "/etc/passwd", `sub/../../${SHARD}`, "..\\..\\x.safetensors"]) {
    test(`an index entry naming ${file} is refused, naming the entry`, () => {
      const dir = copy();
      const name = redirect(dir, file);
      expect(() => openCheckpoint(dir)).toThrow(new RegExp(`${INDEX}: weight_map entry ${esc(name)} -> "${esc(file.replace(/\\/g, "\\\\"))}" is not a file inside the model directory`));
    });
  }

  test("a shard that is a symlink out of the model directory is refused, naming it", () => {
    const dir = copy();
    renameSync(join(dir, SHARD), join(dir, "..", "elsewhere.safetensors"));
    symlinkSync(join(dir, "..", "elsewhere.safetensors"), join(dir, SHARD));
    const ck = openCheckpoint(dir); // only headers of shards are read on first use
    expect(() => ck.names().forEach((t) => ck.info(t))).toThrow(new RegExp(`${esc(SHARD)}: shard ${esc(SHARD)} resolves to .*elsewhere\\.safetensors, outside the model directory`));
  });

  test("without an index, a symlinked shard out of the directory is refused too", () => {
    const dir = copy();
    rmSync(join(dir, INDEX));
    renameSync(join(dir, SHARD), join(dir, "..", "elsewhere.safetensors"));
    symlinkSync(join(dir, "..", "elsewhere.safetensors"), join(dir, SHARD));
    expect(() => openCheckpoint(dir)).toThrow(/outside the model directory/);
  });

  test("a Hugging Face hub cache snapshot (shards linked to ../../blobs/) loads", () => {
    const repo = join(tmp, "hub", "models--org--tiny");
    const snap = join(repo, "snapshots", "0123abcd"), blobs = join(repo, "blobs");
    mkdirSync(snap, { recursive: true });
    mkdirSync(blobs, { recursive: true });
    readdirSync(SRC).filter((f) => f.endsWith(".json") || f.endsWith(".safetensors")).forEach((f, i) => {
      cpSync(join(SRC, f), join(blobs, `blob${i}`));
      symlinkSync(`../../blobs/blob${i}`, join(snap, f));
    });
    const ck = openCheckpoint(snap);
    const t = "lm_head.weight";
    expect(ck.raw(t, [ck.info(t).dtype], ck.info(t).shape).bytes.byteLength).toBeGreaterThan(0);
  });
});
