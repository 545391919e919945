// Reusable activation buffers: each module keeps its temporaries between steps instead of
// allocating them per step. A buffer grows to the largest batch seen and is then reused, so the
// hot path allocates nothing once shapes repeat. Contents are NOT zeroed: kernels overwrite them.

export class Scratch {
  private readonly bufs = new Map<string, Float32Array>();

  /** A Float32Array view of n elements named `name`, valid until the next get(name). */
  f32(name: string, n: number): Float32Array {
    let b = this.bufs.get(name);
    if (!b || b.length < n) {
      b = new Float32Array(Math.max(n, Math.ceil((b?.length ?? 0) * 1.5)));
      this.bufs.set(name, b);
    }
    return b.subarray(0, n);
  }

  /** Drops every buffer (e.g. when the actor is passivated). */
  clear(): void {
    this.bufs.clear();
  }
}
