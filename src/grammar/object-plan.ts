// What an object schema allows next, precomputed once per object node: which properties may come
// after the i-th (optional ones may be skipped, required ones not), whether the object may close,
// and the fewest bytes that finish it from each phase (for closing within max_tokens).
import { LiteralChoice } from "./literal.ts";
import type { Node } from "./schema.ts";

type Obj = Extract<Node, { t: "obj" }>;

interface ObjView {
  ph: string;
  i: number;
  cur: number;
  ks: { n: number; c: readonly number[] } | null;
}

const plans = new WeakMap<Obj, ObjectPlan>();

export class ObjectPlan {
  readonly keys: LiteralChoice; // the quoted property names
  readonly keyNode: Node = { t: "str", min: 0, max: Infinity, minLen: 2 }; // free-form keys
  private readonly rest: number[]; // rest[i + 1]: fewest bytes after property i is written, '}' included
  private readonly cands: number[][]; // cands[i + 1]: properties that may follow property i

  static of(n: Obj): ObjectPlan {
    let p = plans.get(n);
    if (!p) plans.set(n, (p = new ObjectPlan(n)));
    return p;
  }

  private constructor(readonly n: Obj) {
    const P = n.props;
    this.keys = new LiteralChoice(P.length ? P.map((p) => p.key) : [new Uint8Array([0x22, 0x22])]);
    this.rest = new Array(P.length + 1).fill(1);
    for (let i = P.length - 2; i >= -1; i--) {
      const q = P[i + 1];
      this.rest[i + 1] = this.rest[i + 2] + (q.required ? 1 + this.entry(i + 1) : 0);
    }
    this.cands = [];
    for (let i = -1; i < P.length; i++) {
      const c: number[] = [];
      for (let j = i + 1; j < P.length; j++) {
        c.push(j);
        if (P[j].required) break;
      }
      this.cands.push(c);
    }
  }

  /** Bytes of `"key":value` for property j at its shortest. */
  private entry(j: number): number {
    const p = this.n.props[j];
    return p.key.length + 1 + p.node.minLen;
  }

  candidates(i: number): number[] {
    return this.cands[i + 1];
  }
  canClose(i: number): boolean {
    return this.n.free !== null || !this.n.props.slice(i + 1).some((p) => p.required);
  }
  canContinue(i: number): boolean {
    return this.n.free !== null || this.cands[i + 1].length > 0;
  }
  private after(i: number): number {
    return this.rest[i + 1];
  }

  minClose(f: ObjView): number {
    const n = this.n;
    if (n.free) {
      const v = n.free.minLen;
      switch (f.ph) {
        case "start": return 2;
        case "kv": return 1 + v + 1;
        case "colon": return 1 + v + 1;
        case "val": return v + 1;
        case "comma": return 3 + v + 1;
        case "closed": return 0;
        default: return 1;
      }
    }
    switch (f.ph) {
      case "start": return n.minLen;
      case "open": { const r = this.after(-1); return r > 1 ? r - 1 : 1; }
      case "key": {
        let m = Infinity;
        for (const c of f.ks!.c) m = Math.min(m, n.props[c].key.length - f.ks!.n + 1 + n.props[c].node.minLen + this.after(c));
        return m;
      }
      case "colon": return 1 + n.props[f.cur].node.minLen + this.after(f.cur);
      case "val": return n.props[f.cur].node.minLen + this.after(f.cur);
      case "value": return this.after(f.cur);
      case "after": return this.after(f.i);
      case "comma": {
        let m = Infinity;
        for (const c of this.candidates(f.i)) m = Math.min(m, this.entry(c) + this.after(c));
        return m;
      }
      default: return 0;
    }
  }
}
