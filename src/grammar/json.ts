// The JSON automaton: a stack of frames, one per value being written (string, number, literal,
// object, array), over a document frame. Frames are immutable; a value without a closing byte (a
// number) is finished when the next byte does not continue it, and its parent takes that byte.
// Output is compact JSON: no whitespace but one optional space after ':' and ','.
import type { ByteAutomaton } from "./automaton.ts";
import { startString, stepString, type StrFrame, stringFreeText, stringKey, stringMin } from "./json-string.ts";
import type { LitState } from "./literal.ts";
import type { Node, Prop } from "./schema.ts";
import { ObjectPlan } from "./object-plan.ts";

type Of<T extends Node["t"]> = Extract<Node, { t: T }>;
type ObjPhase = "start" | "open" | "key" | "kv" | "colon" | "val" | "value" | "after" | "comma" | "closed";
type ArrPhase = "start" | "open" | "value" | "after" | "comma" | "closed";

type Frame =
  | { k: "doc"; done: boolean }
  | { k: "val"; n: Of<"union"> } // a value whose first byte picks the alternative
  | StrFrame
  | { k: "num"; n: Of<"num">; s: string }
  | { k: "lit"; n: Of<"lit">; s: LitState }
  | { k: "obj"; n: Of<"obj">; ph: ObjPhase; i: number; cur: number; ks: LitState | null; sp: boolean }
  | { k: "arr"; n: Of<"arr">; ph: ArrPhase; cnt: number; sp: boolean };

export interface Stack {
  f: Frame;
  up: Stack | null;
}

const SP = 0x20;

export function start(n: Node): Frame {
  switch (n.t) {
    case "str": return startString(n);
    case "num": return { k: "num", n, s: "" };
    case "lit": return { k: "lit", n, s: n.lit.init };
    case "obj": return { k: "obj", n, ph: "start", i: -1, cur: -1, ks: null, sp: false };
    case "arr": return { k: "arr", n, ph: "start", cnt: 0, sp: false };
    case "union": return { k: "val", n };
  }
}

const ids = new WeakMap<object, number>();
let nextId = 0;
const id = (o: object) => ids.get(o) ?? (ids.set(o, nextId++), nextId - 1);

export class JsonAutomaton implements ByteAutomaton<Stack> {
  readonly init: Stack;
  constructor(readonly root: Node) {
    this.init = { f: start(root), up: { f: { k: "doc", done: false }, up: null } };
  }

  step(st: Stack, b: number): Stack | null {
    const r = stepFrame(st, b);
    if (r) return r;
    if (st.up && done(st.f)) return this.step({ f: afterChild(st.up.f), up: st.up.up }, b);
    return null;
  }

  accepting(st: Stack): boolean {
    if (!done(st.f)) return false;
    return st.up === null || this.accepting({ f: afterChild(st.up.f), up: st.up.up });
  }

  minClose(st: Stack): number {
    let m = 0;
    for (let s: Stack | null = st; s; s = s.up) m += frameMin(s.f);
    return m;
  }

  freeText(st: Stack): { max: number; short: number } | null {
    const f = st.f;
    return f.k === "str" ? stringFreeText(f) : null;
  }

  key(st: Stack): string {
    let k = "";
    for (let s: Stack | null = st; s; s = s.up) k += frameKey(s.f) + "|";
    return k;
  }
}

function done(f: Frame): boolean {
  switch (f.k) {
    case "doc": return f.done;
    case "val": return false;
    case "str": return f.end;
    case "num": return f.n.range.complete(f.s);
    case "lit": return f.n.lit.accepting(f.s);
    case "obj":
    case "arr": return f.ph === "closed";
  }
}

function afterChild(f: Frame): Frame {
  if (f.k === "doc") return { k: "doc", done: true };
  if (f.k === "obj") return f.ph === "kv" ? { ...f, ph: "colon" } : { ...f, ph: "after", i: f.cur, sp: false };
  if (f.k === "arr") return { ...f, ph: "after", cnt: f.n.max === Infinity ? Math.min(f.cnt + 1, f.n.min) : f.cnt + 1, sp: false };
  throw new Error(`a ${f.k} frame has no children`);
}

/** The stack after byte b when the top frame takes it (itself, or by starting a child); else null. */
function stepFrame(st: Stack, b: number): Stack | null {
  const f = st.f, up = st.up;
  const same = (g: Frame | null): Stack | null => (g ? { f: g, up } : null);
  const push = (parent: Frame, child: Node): Stack | null => {
    const c = stepFrame({ f: start(child), up: null }, b);
    return c ? { f: c.f, up: { f: parent, up } } : null;
  };
  switch (f.k) {
    case "doc": return null;
    case "val":
      for (const br of f.n.branches) {
        const c = stepFrame({ f: start(br), up }, b);
        if (c) return c;
      }
      return null;
    case "str": return same(stepString(f, b));
    case "num": {
      const s = f.s + String.fromCharCode(b);
      return b < 0x80 && f.n.range.viable(s) ? same({ ...f, s }) : null;
    }
    case "lit": {
      const s = f.n.lit.step(f.s, b);
      return s ? same({ ...f, s }) : null;
    }
    case "obj": return stepObject(f, b, same, push);
    case "arr": {
      const n = f.n;
      if (f.ph === "start") return b === 0x5b ? same({ ...f, ph: "open" }) : null;
      if (f.ph === "closed") return null;
      if (f.ph === "after") {
        if (b === 0x5d && f.cnt >= n.min) return same({ ...f, ph: "closed" });
        if (b === 0x2c && f.cnt < n.max) return same({ ...f, ph: "comma" });
        return null;
      }
      if (f.ph === "open" && b === 0x5d && n.min === 0) return same({ ...f, ph: "closed" });
      if (f.ph === "comma" && b === SP && !f.sp) return same({ ...f, sp: true });
      if (f.ph === "open" && n.max === 0) return null;
      return f.ph === "open" || f.ph === "comma" ? push({ ...f, ph: "value" }, n.item) : null;
    }
  }
}

type ObjFrame = Extract<Frame, { k: "obj" }>;

function stepObject(f: ObjFrame, b: number, same: (g: Frame | null) => Stack | null,
                    push: (parent: Frame, child: Node) => Stack | null): Stack | null {
  const n = f.n, plan = ObjectPlan.of(n);
  switch (f.ph) {
    case "start": return b === 0x7b ? same({ ...f, ph: "open" }) : null;
    case "closed": return null;
    case "open":
    case "after":
      if (b === 0x7d && plan.canClose(f.ph === "open" ? -1 : f.i)) return same({ ...f, ph: "closed" });
      if (f.ph === "open") return startKey(f, b, same, push);
      return b === 0x2c && plan.canContinue(f.i) ? same({ ...f, ph: "comma", sp: false }) : null;
    case "comma":
      if (b === SP && !f.sp) return same({ ...f, sp: true });
      return startKey(f, b, same, push);
    case "key": {
      const ks = plan.keys.step(f.ks!, b);
      if (!ks) return null;
      const c = plan.keys.completed(ks);
      return same(c >= 0 ? { ...f, ph: "colon", cur: c, ks: null } : { ...f, ks });
    }
    case "colon": return b === 0x3a ? same({ ...f, ph: "val", sp: false }) : null;
    case "val":
      if (b === SP && !f.sp) return same({ ...f, sp: true });
      return push({ ...f, ph: "value" }, n.free ?? n.props[f.cur].node);
    case "kv":
    case "value": return null;
  }
}

function startKey(f: ObjFrame, b: number, same: (g: Frame | null) => Stack | null,
                  push: (parent: Frame, child: Node) => Stack | null): Stack | null {
  const plan = ObjectPlan.of(f.n);
  if (f.n.free) return push({ ...f, ph: "kv" }, plan.keyNode);
  const ks = plan.keys.step({ n: 0, c: plan.candidates(f.ph === "open" ? -1 : f.i) }, b);
  return ks ? same({ ...f, ph: "key", ks }) : null;
}

function frameMin(f: Frame): number {
  switch (f.k) {
    case "doc": return 0;
    case "val": return f.n.minLen;
    case "str": return stringMin(f);
    case "num": return f.n.range.minClose(f.s);
    case "lit": return f.n.lit.minClose(f.s);
    case "obj": return ObjectPlan.of(f.n).minClose(f);
    case "arr": {
      const n = f.n, L = n.item.minLen;
      switch (f.ph) {
        case "start": return n.minLen;
        case "open": return n.min === 0 ? 1 : n.min * L + n.min;
        case "value": return Math.max(0, n.min - f.cnt - 1) * (L + 1) + 1;
        case "after": return Math.max(0, n.min - f.cnt) * (L + 1) + 1;
        case "comma": { const k = Math.max(1, n.min - f.cnt); return k * L + k; }
        case "closed": return 0;
      }
    }
  }
}

function frameKey(f: Frame): string {
  switch (f.k) {
    case "doc": return f.done ? "D" : "d";
    case "val": return `v${id(f.n)}`;
    case "str": return stringKey(f);
    case "num": return `n${id(f.n)},${f.s}`;
    case "lit": return `l${id(f.n)},${f.n.lit.key(f.s)}`;
    case "obj": return `o${id(f.n)},${f.ph},${f.i},${f.cur},${f.ks ? ObjectPlan.of(f.n).keys.key(f.ks) : ""},${+f.sp}`;
    case "arr": return `a${id(f.n)},${f.ph},${f.cnt},${+f.sp}`;
  }
}

export type { Prop };
