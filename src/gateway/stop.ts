// Stop strings are matched on text, across token boundaries. Text that could be the start of a stop
// string is held back until the next delta decides it, so a stream never shows part of a stop string
// and the stop string itself is never emitted.

export interface StopResult {
  text: string; // safe to emit now
  stopped: boolean; // a stop string matched; `text` ends just before it
}

export class StopMatcher {
  private held = "";
  private readonly maxLen: number;

  constructor(private readonly stops: readonly string[]) {
    this.maxLen = stops.reduce((m, s) => Math.max(m, s.length), 0);
  }

  push(delta: string): StopResult {
    if (this.stops.length === 0) return { text: delta, stopped: false };
    const buf = this.held + delta;
    let cut = -1;
    for (const s of this.stops) {
      const i = buf.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      this.held = "";
      return { text: buf.slice(0, cut), stopped: true };
    }
    const keep = this.partialSuffix(buf);
    this.held = buf.slice(buf.length - keep);
    return { text: buf.slice(0, buf.length - keep), stopped: false };
  }

  /** At the end of the sequence nothing more can complete a stop string: release what was held. */
  flush(): string {
    const out = this.held;
    this.held = "";
    return out;
  }

  /** Length of the longest suffix of `buf` that is a proper prefix of some stop string. */
  private partialSuffix(buf: string): number {
    for (let n = Math.min(this.maxLen - 1, buf.length); n > 0; n--) {
      const tail = buf.slice(buf.length - n);
      if (this.stops.some((s) => s.startsWith(tail))) return n;
    }
    return 0;
  }
}
