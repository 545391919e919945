// Weights read into huge-page arenas are the same bytes as the file mapping; a file cut short
// after opening fails naming the file and the tensor.
import { afterAll, afterEach, expect, test } from "bun:test";
import { ptr } from "bun:ffi";
import { cpSync, mkdtempSync, rmSync, truncateSync } from "node:fs";
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

test("arena copies equal the mapped bytes, tensor by tensor", () => {
  delete process.env.MOE_WEIGHTS;
  const mode = weightMemory();
  const ck = openCheckpoint(SRC);
  const names = ck.names();
  const read = (m: string) => {
    process.env.MOE_WEIGHTS = m;
    const c = openCheckpoint(SRC);
    return names.map((n) => c.raw(n, [c.info(n).dtype], c.info(n).shape).bytes.slice());
  };
  const a = read("hugepages"), b = read("mmap");
  expect(names.length).toBeGreaterThan(10);
  for (let i = 0; i < names.length; i++) expect(Buffer.compare(a[i], b[i])).toBe(0);
  expect(["hugepages", "mmap"]).toContain(mode);
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

test("a shard cut short after opening: the error names the file and the tensor", () => {
  process.env.MOE_WEIGHTS = "hugepages";
  const dir = join(tmp, "cut");
  cpSync(SRC, dir, { recursive: true });
  const ck = openCheckpoint(dir);
  const name = "lm_head.weight", info = ck.info(name);
  truncateSync(info.file, 64);
  expect(() => ck.weight(name, info.shape)).toThrow(new RegExp(`${info.file.split("/").pop()}: tensor ${name}: the file ends`));
});

test("MOE_WEIGHTS takes mmap or hugepages only", () => {
  process.env.MOE_WEIGHTS = "swap";
  expect(() => weightMemory()).toThrow(/MOE_WEIGHTS must be mmap or hugepages/);
});
