// The KV block books: which cache pages each sequence holds. Storage lives with the attention
// actor; this only hands out page numbers, so a full cache is known before any compute. With
// prefix caching (prefix-cache.ts) full pages are shared between sequences and outlive them: a
// page no sequence holds stays cached until a page is needed, then the least recently used goes.
import { type KeyChain, type PrefixHit, PrefixCache } from "./prefix-cache.ts";

export class BlockManager {
  private readonly free: number[];
  private readonly owned = new Map<string, number[]>();
  private readonly cachedUpTo = new Map<string, number>(); // pages of each sequence already offered to the cache
  readonly prefix: PrefixCache | null;

  constructor(readonly pages: number, readonly pageSize: number, prefixCaching = false) {
    this.free = Array.from({ length: pages }, (_, i) => pages - 1 - i);
    this.prefix = prefixCaching ? new PrefixCache() : null;
  }

  /** Pages held by sequences (idle cached pages count as free: they are given up on demand). */
  get used(): number {
    return this.pages - this.available;
  }

  get available(): number {
    return this.free.length + (this.prefix?.evictable ?? 0);
  }

  pagesFor(tokens: number): number {
    return Math.ceil(tokens / this.pageSize);
  }

  /** Pages seq holds. */
  table(seq: string): readonly number[] {
    return this.owned.get(seq) ?? [];
  }

  /** Whether seq could grow to `tokens` cached positions now. */
  canGrow(seq: string, tokens: number): boolean {
    return this.pagesFor(tokens) - this.table(seq).length <= this.available;
  }

  /** The cached pages a new sequence can start from: full pages only, and never the page of the
   * last token (it is fed again so there are logits to sample from). */
  lookup(chain: KeyChain, at: (pos: number) => number, length: number, needNext: boolean): PrefixHit {
    if (!this.prefix) return { pages: [], cache: undefined };
    return this.prefix.lookup(chain, at, Math.floor((length - 1) / this.pageSize), this.pageSize, needNext);
  }

  /** Grows seq's table to cover `tokens` positions; false (and no change) when out of pages. A
   * sequence without pages may start from `shared` (a lookup's hit), which it then holds too. */
  grow(seq: string, tokens: number, shared: readonly number[] = []): boolean {
    const have = this.owned.get(seq) ?? [];
    if (have.length) shared = [];
    const need = this.pagesFor(tokens) - have.length - shared.length;
    const idleShared = shared.filter((p) => this.prefix?.isIdle(p)).length; // not evictable once taken
    if (need > this.available - idleShared) return false;
    for (const p of shared) {
      this.prefix!.acquire(p);
      have.push(p);
    }
    if (shared.length) this.cachedUpTo.set(seq, shared.length);
    for (let i = 0; i < need; i++) have.push(this.take());
    this.owned.set(seq, have);
    return true;
  }

  /** Offers seq's full pages, of its first `upTo` positions, to the cache (written by incarnation
   * `cache`). `known` tokens are known; with `needNext` a page is offered once the token after it is. */
  offer(seq: string, chain: KeyChain, at: (pos: number) => number, upTo: number, known: number, cache: string, needNext: boolean): void {
    const table = this.owned.get(seq);
    if (!this.prefix || !table) return;
    this.prefix.observe(cache).forEach((p) => this.free.push(p));
    let i = this.cachedUpTo.get(seq) ?? 0;
    for (; (i + 1) * this.pageSize <= Math.min(upTo, known) && i < table.length; i++) {
      const end = (i + 1) * this.pageSize;
      if (needNext && end >= known) break;
      this.prefix.register(table[i], chain.key(i, at), cache, end < known ? at(end) : undefined);
    }
    this.cachedUpTo.set(seq, i);
  }

  /** The replica answered from `cache`: pages cached by its other incarnations are gone. */
  observe(cache: string): void {
    this.prefix?.observe(cache).forEach((p) => this.free.push(p));
  }

  /** Pages cached by incarnation `cache` were found lost: never offer them again. */
  forget(cache: string): void {
    this.prefix?.forgetIncarnation(cache).forEach((p) => this.free.push(p));
  }

  /** Drops pages beyond `tokens` positions (speculative rollback; never a full cached page). */
  shrink(seq: string, tokens: number): void {
    const have = this.owned.get(seq);
    if (!have) return;
    while (have.length > this.pagesFor(tokens)) this.giveBack(have.pop() as number);
  }

  release(seq: string): void {
    const have = this.owned.get(seq);
    this.cachedUpTo.delete(seq);
    if (!have) return;
    for (const p of have) this.giveBack(p);
    this.owned.delete(seq);
  }

  private giveBack(page: number): void {
    if (!this.prefix?.release(page)) this.free.push(page);
  }

  /** A free page, or the least recently used idle cached one. */
  private take(): number {
    const p = this.free.pop() ?? this.prefix?.evict();
    if (p === undefined) throw new Error("no KV page to take (the books' count is wrong)");
    return p;
  }
}
