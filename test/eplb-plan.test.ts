// Online EPLB's plan (replicateHot) and its config key: the hottest experts get one copy each on
// the least loaded expert actors, every other copy is dropped, primaries never move.
import { describe, expect, test } from "bun:test";
import { replicateHot } from "../src/config/expert-table.ts";
import { parseScaling, resolveScaling } from "../src/config/scaling.ts";

/** The even split of 16 experts over 4 actors, with the static copies of experts 0 and 8. */
const split4 = (): string[][] => Array.from({ length: 16 }, (_, e) => [String(Math.floor(e / 4))]);

describe("replicateHot", () => {
  test("the K hottest experts get a copy on the least loaded actors; cold copies are dropped", () => {
    const table = split4();
    table[0]!.push("1");
    table[8]!.push("3"); // static copies (evenly spaced ids, no load seen yet)
    // Zipf-like: expert e gets ~ 1000 / (1 + e) tokens; actor 0 (experts 0-3) carries most.
    const load = Array.from({ length: 16 }, (_, e) => Math.round(1000 / (1 + e)));
    const next = replicateHot(table, load, 2);
    expect(next.map((h) => h[0])).toEqual(split4().map((h) => h[0])); // primaries stay
    expect(next.flatMap((h, e) => (h.length > 1 ? [e] : []))).toEqual([0, 1]); // the two hottest
    // Actor loads before: 0: 2083, 1: 635, 2: 385, 3: 278. Expert 0's half (500) goes to the least
    // loaded actor (3, now 778), then expert 1's half (250) to the least loaded of the others (2).
    expect(next[0]).toEqual(["0", "3"]);
    expect(next[1]).toEqual(["0", "2"]);
    expect(next[8]).toEqual(["2"]); // the cold copy is gone
  });

  test("no load: only primaries; ties go to the actor holding fewer experts, then after the primary", () => {
    expect(replicateHot(split4(), new Array(16).fill(0), 3)).toEqual(split4());
    const even = replicateHot(split4(), new Array(16).fill(5), 1); // expert 0 (lowest id) is hottest
    expect(even[0]).toEqual(["0", "1"]);
  });

  test("a table of one actor has no second actor to copy to", () => {
    const one = Array.from({ length: 4 }, () => ["0"]);
    expect(replicateHot(one, [9, 1, 1, 1], 2)).toEqual(one);
    expect(() => replicateHot(one, [1, 2], 1)).toThrow("load has 2 experts, the table 4");
  });
});

describe("experts.rebalance_ms", () => {
  const base = (experts: object) => ({
    placement: "inprocess",
    actors: { attention: {}, router: {}, expert: { experts } },
  });

  test("resolves to the period online EPLB runs at (null without it)", () => {
    const shape = { n_routed_experts: 16 };
    expect(resolveScaling(parseScaling(base({ split: 4, replicate_hot: 2, rebalance_ms: 500 })), shape).rebalanceMs).toBe(500);
    expect(resolveScaling(parseScaling(base({ split: 4, replicate_hot: 2 })), shape).rebalanceMs).toBeNull();
  });

  test("needs copies to move, and a positive integer", () => {
    expect(() => parseScaling(base({ split: 4, rebalance_ms: 500 }))).toThrow("actors.expert.experts.rebalance_ms: only with replicate_hot >= 1");
    expect(() => parseScaling(base({ split: 4, replicate_hot: 1, rebalance_ms: 0 }))).toThrow("actors.expert.experts.rebalance_ms: must be >= 1");
  });
});
