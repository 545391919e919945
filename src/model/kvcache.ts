// The paged latent cache of one MLA layer: kv_norm(latent) [pages, pageSize, C] and the roped
// shared key [pages, pageSize, dr], in float32. Pages are handed out by the engine's block books.

export class LatentCache {
  readonly kv: Float32Array;
  readonly pe: Float32Array;

  constructor(readonly pages: number, readonly pageSize: number, readonly C: number, readonly dr: number) {
    this.kv = new Float32Array(pages * pageSize * C);
    this.pe = new Float32Array(pages * pageSize * dr);
  }

  static bytesPerToken(C: number, dr: number): number {
    return (C + dr) * 4;
  }
}
