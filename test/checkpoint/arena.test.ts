// Weights read into huge-page arenas are the bytes of the file; shards are never mapped, so a
// file cut short after opening fails naming the file and the tensor (a mapping would SIGBUS).
import { afterAll, afterEach, expect, test } from "bun:test";
import { ptr } from "bun:ffi";
import { closeSync, cpSync, mkdtempSync, openSync, readSync, rmSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { arenaAlloc, weightMemory } from "../../src/checkpoint/arena.ts";
import { openCheckpoint } from "../../src/checkpoint/checkpoint.ts";

const SRC = new URL("../fixtures/tiny-dsv3", import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), "moe-arena-"));
const saved = process.env.MOE_WEIGHTS;
afterEach(() => {
  if (saved === undefined) delete process.env.MOE_WEIGHTS;
  else process.env.MOE_WEIGHTS = saved;
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

test("arena copies equal the bytes in the file, tensor by tensor", () => {
  delete process.env.MOE_WEIGHTS;
  expect(["hugepages", "plain"]).toContain(weightMemory());
  const ck = openCheckpoint(SRC);
  const names = ck.names();
  expect(names.length).toBeGreaterThan(10);
  for (const n of names) {
    const info = ck.info(n);
    const got = ck.raw(n, [info.dtype], info.shape).bytes;
    const fd = openSync(info.file, "r");
    const header = Buffer.alloc(8);
    readSync(fd, header, 0, 8, 0);
    const want = Buffer.alloc(info.end - info.begin);
    readSync(fd, want, 0, want.length, 8 + Number(header.readBigUInt64LE(0)) + info.begin);
    closeSync(fd);
    expect(Buffer.compare(got, want)).toBe(0);
  }
});

test("one copy per tensor while it is held; large tensors start on a huge page", () => {
  process.env.MOE_WEIGHTS = "hugepages";
  const ck = openCheckpoint(SRC);
  const w1 = ck.weight("model.embed_tokens.weight", ck.info("model.embed_tokens.weight").shape);
  const w2 = ck.weight("model.embed_tokens.weight", ck.info("model.embed_tokens.weight").shape);
  expect(w2.data).toBe(w1.data);
  expect(ptr(arenaAlloc(20 << 20)) % (2 << 20)).toBe(0);
  expect(ptr(arenaAlloc(100)) % 64).toBe(0);
});

for (const mode of ["hugepages", undefined]) {
  test(`a shard cut short after opening (MOE_WEIGHTS=${mode ?? "unset"}): the error names the file and the tensor`, () => {
    if (mode) process.env.MOE_WEIGHTS = mode;
    else delete process.env.MOE_WEIGHTS;
    const dir = join(tmp, `cut-${mode ?? "default"}`);
    cpSync(SRC, dir, { recursive: true });
    const ck = openCheckpoint(dir);
    const name = "lm_head.weight", info = ck.info(name);
    truncateSync(info.file, 64);
    expect(() => ck.weight(name, info.shape)).toThrow(new RegExp(`${info.file.split("/").pop()}: tensor ${name}: the file ends`));
  });
}

test("MOE_WEIGHTS=mmap is refused with the reason, when the checkpoint is opened", () => {
  process.env.MOE_WEIGHTS = "mmap";
  expect(() => weightMemory()).toThrow(/MOE_WEIGHTS=mmap is no longer offered: a shard truncated under a running server would kill it \(SIGBUS\)/);
  expect(() => openCheckpoint(SRC)).toThrow(/MOE_WEIGHTS=mmap is no longer offered/);
});

test("MOE_WEIGHTS takes hugepages only", () => {
  process.env.MOE_WEIGHTS = "swap";
  expect(() => weightMemory()).toThrow(/MOE_WEIGHTS must be hugepages or unset, not swap/);
});
