// The MTP module over selected rows: the rows it drafts from get the logits and hidden states of
// running the whole block over every row, and every row's keys and values still reach the cache.
import { describe, expect, test } from "bun:test";
import { openCheckpoint } from "../../src/checkpoint/checkpoint.ts";
import { cpuKernels } from "../../src/kernels/kernels.ts";
import { buildBatch, selectRows } from "../../src/model/batch.ts";
import { LocalMoE } from "../../src/model/moe.ts";
import { StepRunner } from "../../src/model/runner.ts";

const root = new URL("../..", import.meta.url).pathname;

describe("selectRows", () => {
  const b = buildBatch([{ tokens: [5, 6, 7], start: 4, pages: [3, 1] }, { tokens: [8, 9], start: 0, pages: [2] }], 4);
  test("each selected row becomes a one-row sequence with its own causal view", () => {
    const s = selectRows(b, Int32Array.from([1, 4, 2]));
    expect(s.T).toBe(3);
    expect(Array.from(s.tokens)).toEqual([6, 9, 7]);
    expect(Array.from(s.positions)).toEqual([5, 1, 6]);
    expect(Array.from(s.slots)).toEqual([b.slots[1], b.slots[4], b.slots[2]]);
    expect(Array.from(s.cuQ)).toEqual([0, 1, 2, 3]);
    expect(Array.from(s.ctxLen)).toEqual([6, 2, 7]);
    expect(Array.from(s.blockTables)).toEqual([3, 1, 2, 0, 3, 1]);
  });
  test("rows outside the batch are refused", () => {
    expect(() => selectRows(b, Int32Array.from([5]))).toThrow(/row 5/);
  });
});

for (const name of ["tiny-dsv3", "fortune-dsv3"]) {
  test(`${name}: MTP over selected rows matches MTP over all rows`, async () => {
    const dir = name === "fortune-dsv3" ? `${root}models/fortune-dsv3` : `${root}test/fixtures/${name}`;
    const ck = openCheckpoint(dir), k = cpuKernels();
    const moe = new LocalMoE(ck, ck.config, k);
    const runner = new StepRunner(ck, k, { pages: 8, pageSize: 16, mtp: true });
    const mtp = runner.mtp!, cache = runner.mtpCache!, D = ck.config.hidden_size, V = ck.config.vocab_size;
    const ids = [0, 11, 23, 5, 17, 42, 99, 7, 23, 64, 3, 12];
    const pages = [0, 1];
    const [r] = await runner.run([{ seq: "s", tokens: ids, start: 0, pages, hidden: true }], moe.routed);
    const n = ids.length - 1, b = buildBatch([{ tokens: ids.slice(1), start: 0, pages }], 16);
    const h = r.hidden!.subarray(0, n * D);
    const all = await mtp.forward(b, h, cache, moe.routed, Int32Array.from({ length: n }, (_, i) => i));
    const wantLogits = all.logits.slice(), wantHidden = all.hidden.slice();
    const wantKv = cache.kv.slice(0, 16 * 2 * cache.C), wantPe = cache.pe.slice(0, 16 * 2 * cache.dr);
    cache.kv.fill(0);
    cache.pe.fill(0);
    const rows = [3, n - 1];
    const some = await mtp.forward(b, h, cache, moe.routed, Int32Array.from(rows));
    expect(cache.kv.slice(0, 16 * 2 * cache.C)).toEqual(wantKv);
    expect(cache.pe.slice(0, 16 * 2 * cache.dr)).toEqual(wantPe);
    let dl = 0, dh = 0;
    rows.forEach((row, i) => {
      for (let v = 0; v < V; v++) dl = Math.max(dl, Math.abs(some.logits[i * V + v] - wantLogits[row * V + v]));
      for (let d = 0; d < D; d++) dh = Math.max(dh, Math.abs(some.hidden[i * D + d] - wantHidden[row * D + d]));
    });
    expect(dl).toBeLessThan(1e-4); // the same math over fewer rows: at most a rounding apart
    expect(dh).toBeLessThan(1e-5);
    const none = await mtp.forward(b, h, cache, moe.routed, new Int32Array(0));
    expect(none.logits.length).toBe(0);
    expect(cache.kv.slice(0, 16 * 2 * cache.C)).toEqual(wantKv);
  });
}
