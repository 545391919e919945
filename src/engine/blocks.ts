// The KV block books: which cache pages each sequence holds. Storage lives with the attention
// actor; this only hands out page numbers, so a full cache is known before any compute.

export class BlockManager {
  private readonly free: number[];
  private readonly owned = new Map<string, number[]>();

  constructor(readonly pages: number, readonly pageSize: number) {
    this.free = Array.from({ length: pages }, (_, i) => pages - 1 - i);
  }

  get used(): number {
    return this.pages - this.free.length;
  }

  get available(): number {
    return this.free.length;
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
    return this.pagesFor(tokens) - this.table(seq).length <= this.free.length;
  }

  /** Grows seq's table to cover `tokens` positions; false (and no change) when out of pages. */
  grow(seq: string, tokens: number): boolean {
    const have = this.owned.get(seq) ?? [];
    const need = this.pagesFor(tokens) - have.length;
    if (need > this.free.length) return false;
    for (let i = 0; i < need; i++) have.push(this.free.pop() as number);
    this.owned.set(seq, have);
    return true;
  }

  /** Drops pages beyond `tokens` positions (speculative rollback). */
  shrink(seq: string, tokens: number): void {
    const have = this.owned.get(seq);
    if (!have) return;
    while (have.length > this.pagesFor(tokens)) this.free.push(have.pop() as number);
  }

  release(seq: string): void {
    const have = this.owned.get(seq);
    if (!have) return;
    for (const p of have) this.free.push(p);
    this.owned.delete(seq);
  }
}
