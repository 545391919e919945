// The books' side of prefix caching: full pages keyed by a hash chain of their tokens, shared with
// reference counts, kept idle after their sequences end, evicted least recently used, and never
// offered again once the incarnation that wrote them is gone.
import { describe, expect, test } from "bun:test";
import { BlockManager } from "../../src/engine/blocks.ts";
import { KeyChain } from "../../src/engine/prefix-cache.ts";

const PS = 4;
const at = (t: number[]) => (i: number) => t[i];
const range = (a: number, n: number) => Array.from({ length: n }, (_, i) => a + i);

/** A sequence `id` of `tokens` written (by incarnation `inc`) and offered to the cache. */
function write(b: BlockManager, id: string, tokens: number[], inc = "A", needNext = false) {
  const chain = new KeyChain(PS);
  const hit = b.lookup(chain, at(tokens), tokens.length, needNext);
  expect(b.grow(id, tokens.length, hit.pages)).toBe(true);
  b.offer(id, chain, at(tokens), tokens.length, tokens.length, inc, needNext);
  return hit;
}

describe("prefix cache books", () => {
  test("a second sequence with the same first pages shares them; the last token's page is never reused", () => {
    const b = new BlockManager(16, PS, true);
    const first = write(b, "a", range(0, 10)); // pages 0,1 full, 2 partial
    expect(first.pages).toEqual([]);
    const t1 = b.table("a");
    const hit = write(b, "b", [...range(0, 8), 99, 98]);
    expect(hit.pages).toEqual([t1[0], t1[1]]);
    expect(hit.cache).toBe("A");
    expect(b.table("b").slice(0, 2)).toEqual([t1[0], t1[1]]);
    expect(b.table("b")[2]).not.toBe(t1[2]); // the partial page is private
    // exactly 8 tokens: page 1 holds the last token, so only page 0 is reused
    expect(b.lookup(new KeyChain(PS), at(range(0, 8)), 8, false).pages).toEqual([t1[0]]);
    // a different first page breaks the chain even when the second page's tokens match
    expect(b.lookup(new KeyChain(PS), at([7, ...range(1, 9)]), 10, false).pages).toEqual([]);
    expect(b.used).toBe(4); // 3 of a's + b's private one
  });

  test("pages outlive their sequences (idle), count as available, and go least recently used first", () => {
    const b = new BlockManager(5, PS, true);
    write(b, "x", range(0, 9)); // 3 pages, 2 full ones cached
    write(b, "y", range(100, 5)); // 2 pages, 1 full one cached
    b.release("x");
    b.release("y");
    expect(b.used).toBe(0);
    expect(b.available).toBe(5);
    expect(b.prefix!.cachedPages).toBe(3); // x's two full pages and y's one
    // y's page was released last (most recently used); x's pages are older: evicted first
    expect(b.grow("z", 16)).toBe(true); // needs 4: the 2 free + the 2 oldest idle
    expect(b.prefix!.cachedPages).toBe(1);
    expect(b.lookup(new KeyChain(PS), at(range(100, 5)), 5, false).pages).toHaveLength(1);
    expect(b.lookup(new KeyChain(PS), at(range(0, 9)), 9, false).pages).toEqual([]);
  });

  test("a shared page is freed only when its last holder lets go and it is evicted", () => {
    const b = new BlockManager(3, PS, true);
    write(b, "a", range(0, 5));
    write(b, "b", range(0, 6));
    expect(b.used).toBe(3); // one shared + two private partial pages
    b.release("a");
    expect(b.used).toBe(2); // the shared page is still held by b
    expect(b.grow("c", 4)).toBe(true); // takes the free page, cannot take b's
    expect(b.grow("d", 1)).toBe(false);
    b.release("b");
    expect(b.grow("d", 1)).toBe(true); // b's private page back to the free list
    expect(b.grow("e", 1)).toBe(true); // the idle shared page evicted
    expect(b.prefix!.cachedPages).toBe(0);
  });

  test("pages of a lost incarnation are never offered again", () => {
    const b = new BlockManager(8, PS, true);
    write(b, "a", range(0, 9), "A");
    b.release("a");
    expect(b.lookup(new KeyChain(PS), at(range(0, 9)), 9, false).pages).toHaveLength(2);
    b.forget("A");
    expect(b.lookup(new KeyChain(PS), at(range(0, 9)), 9, false).pages).toEqual([]);
    expect(b.available).toBe(8);
    // a step answered by a new incarnation drops every older one, even pages still held
    write(b, "c", range(50, 9), "B");
    b.observe("C");
    expect(b.lookup(new KeyChain(PS), at(range(50, 9)), 9, false).pages).toEqual([]);
    b.release("c");
    expect(b.available).toBe(8);
    expect(b.prefix!.cachedPages).toBe(0);
  });

  test("speculative: a page is reused only if the token after it matches (the MTP cache's last row)", () => {
    const b = new BlockManager(8, PS, true);
    write(b, "a", range(0, 9), "A", true);
    expect(b.lookup(new KeyChain(PS), at(range(0, 10)), 10, true).pages).toHaveLength(2);
    const diverge = [...range(0, 8), 77, 78];
    expect(b.lookup(new KeyChain(PS), at(diverge), 10, true).pages).toHaveLength(1);
    expect(b.lookup(new KeyChain(PS), at(diverge), 10, false).pages).toHaveLength(2);
  });

  test("off: nothing is cached, pages go straight back", () => {
    const b = new BlockManager(4, PS, false);
    write(b, "a", range(0, 9));
    b.release("a");
    expect(b.lookup(new KeyChain(PS), at(range(0, 9)), 9, false).pages).toEqual([]);
    expect(b.available).toBe(4);
  });
});
