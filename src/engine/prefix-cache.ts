// Automatic prefix caching, the books' side (vLLM's and SGLang's idea): a full KV page is named by a
// hash chain of its tokens (the previous page's key + this page's token ids), so two sequences whose
// first N pages hold the same tokens can share those pages. Pages are counted by reference; a page
// nobody holds stays cached, idle, until a page is needed and it is the least recently used.
// Only full pages are shared and a sequence writes only at positions past the pages it reused, so a
// shared page is never written (no copy-on-write). The storage lives in an attention actor whose
// cache has an incarnation: a page is only valid in the incarnation that wrote it.
import { createHash } from "node:crypto";

/** The keys of a sequence's pages, computed on demand (a sequence's tokens are append-only, so a
 * key once computed never changes). */
export class KeyChain {
  private readonly keys: string[] = [];

  constructor(private readonly pageSize: number) {}

  /** Page i's key: needs tokens 0..(i+1)*pageSize-1, which `at` gives. */
  key(i: number, at: (pos: number) => number): string {
    const ps = this.pageSize;
    while (this.keys.length <= i) {
      const p = this.keys.length;
      const ids = new Int32Array(ps);
      for (let j = 0; j < ps; j++) ids[j] = at(p * ps + j);
      const h = createHash("sha256");
      if (p > 0) h.update(this.keys[p - 1]);
      this.keys.push(h.update(new Uint8Array(ids.buffer)).digest("base64"));
    }
    return this.keys[i];
  }
}

interface Entry {
  key: string;
  cache: string; // the incarnation whose cache holds the page's contents
  next: number | undefined; // the token after the page when it was cached (the MTP cache's last row depends on it)
}

export interface PrefixHit {
  pages: number[];
  cache: string | undefined; // the incarnation that wrote them
}

/** The cached pages of one attention replica: which key each holds, who holds it, and the idle
 * ones in least-recently-used order. */
export class PrefixCache {
  private readonly byKey = new Map<string, number>();
  private readonly entries = new Map<number, Entry>();
  private readonly refs = new Map<number, number>(); // shared pages -> sequences holding them
  private readonly idle = new Map<number, true>(); // cached, held by nobody; oldest first
  /** The incarnation the replica's last step answered from: pages of others are gone. */
  current: string | undefined;

  get evictable(): number {
    return this.idle.size;
  }

  get cachedPages(): number {
    return this.entries.size;
  }

  isIdle(page: number): boolean {
    return this.idle.has(page);
  }

  /** The longest run of cached pages that starts the token sequence, at most `maxPages` of them.
   * With `needNext`, the last page must have been cached followed by the same token as here. */
  lookup(chain: KeyChain, at: (pos: number) => number, maxPages: number, pageSize: number, needNext: boolean): PrefixHit {
    const pages: number[] = [];
    let cache: string | undefined;
    for (let i = 0; i < maxPages; i++) {
      const page = this.byKey.get(chain.key(i, at));
      const e = page === undefined ? undefined : this.entries.get(page);
      if (page === undefined || !e || (cache !== undefined && e.cache !== cache)) break;
      cache = e.cache;
      pages.push(page);
    }
    if (needNext && pages.length && this.entries.get(pages.at(-1)!)!.next !== at(pages.length * pageSize)) pages.pop();
    return { pages, cache: pages.length ? cache : undefined };
  }

  /** A sequence takes a page: it is no longer idle. */
  acquire(page: number): void {
    this.idle.delete(page);
    this.refs.set(page, (this.refs.get(page) ?? 0) + 1);
  }

  /** A sequence lets go of a page. True when the page stays with the cache; false when it was
   * never cached (or was forgotten) and nobody holds it: the caller frees it. */
  release(page: number): boolean {
    const n = (this.refs.get(page) ?? 1) - 1;
    if (n > 0) {
      this.refs.set(page, n);
      return true;
    }
    this.refs.delete(page);
    if (!this.entries.has(page)) return false;
    this.idle.set(page, true); // most recently used: evicted last
    return true;
  }

  /** A sequence's full page, written by incarnation `cache`, now names `key`. A page whose contents
   * some other page already holds stays private (two sequences prefilled the same text at once). */
  register(page: number, key: string, cache: string, next: number | undefined): void {
    if (this.byKey.has(key) || this.entries.has(page)) return;
    if (this.current !== undefined && cache !== this.current) return;
    this.byKey.set(key, page);
    this.entries.set(page, { key, cache, next });
    if (!this.refs.has(page)) this.refs.set(page, 1); // held by the sequence that wrote it
  }

  /** The least recently used idle page, forgotten; undefined when none is idle. */
  evict(): number | undefined {
    const page = this.idle.keys().next().value;
    if (page === undefined) return undefined;
    this.idle.delete(page);
    this.drop(page);
    return page;
  }

  /** The replica's step answered from `cache`: pages of any other incarnation are gone with the
   * actor that held them. Returns the idle pages freed (pages still held are freed on release). */
  observe(cache: string): number[] {
    if (cache === this.current) return [];
    this.current = cache;
    return this.forget((e) => e.cache !== cache);
  }

  /** Forgets the pages written by incarnation `cache` (found lost); returns the idle ones freed. */
  forgetIncarnation(cache: string): number[] {
    return this.forget((e) => e.cache === cache);
  }

  private forget(which: (e: Entry) => boolean): number[] {
    const freed: number[] = [];
    for (const [page, e] of [...this.entries]) {
      if (!which(e)) continue;
      this.drop(page);
      if (this.idle.delete(page)) freed.push(page);
    }
    return freed;
  }

  private drop(page: number): void {
    const e = this.entries.get(page);
    if (!e) return;
    this.entries.delete(page);
    if (this.byKey.get(e.key) === page) this.byKey.delete(e.key);
  }
}
