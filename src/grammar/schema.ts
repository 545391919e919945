// JSON Schema -> the value nodes the JSON automaton walks. What a keyword means here is what a
// validator checks; a keyword that would constrain the output in a way we cannot enforce is
// refused (GrammarError) rather than ignored, so an accepted schema's outputs always validate.
// Object properties are written in the schema's order (optional ones may be left out): a subset
// of the valid outputs, as xgrammar and outlines do.
import { LiteralChoice } from "./literal.ts";
import { NumberRange } from "./number.ts";
import { RegexAutomaton } from "./regex.ts";

import { GrammarError } from "./error.ts";

export { GrammarError };

export interface Prop {
  name: string;
  key: Uint8Array; // the JSON-encoded name, quotes included
  node: Node;
  required: boolean;
}

export type Node =
  | { t: "str"; min: number; max: number; minLen: number; re?: RegexAutomaton } // re: the pattern, as a search
  | { t: "num"; range: NumberRange; minLen: number }
  | { t: "lit"; lit: LiteralChoice; minLen: number }
  | { t: "obj"; props: Prop[]; free: Node | null; minLen: number } // free: values of any keys (no props)
  | { t: "arr"; item: Node; min: number; max: number; minLen: number }
  | { t: "union"; branches: Node[]; minLen: number };

const enc = new TextEncoder();
const IGNORED = new Set(["title", "description", "default", "examples", "$schema", "$id", "$comment", "format",
  "strict", "deprecated", "readOnly", "writeOnly", "$defs", "definitions", "nullable"]);
const HANDLED = new Set(["type", "enum", "const", "properties", "required", "additionalProperties", "items",
  "minItems", "maxItems", "minLength", "maxLength", "minimum", "maximum", "anyOf", "oneOf", "$ref", "pattern"]);

/** Any JSON value (json_object's values, schemas without a type). */
export function anyNode(): Node {
  const any: Node = { t: "union", branches: [], minLen: 1 };
  const obj: Node = { t: "obj", props: [], free: any, minLen: 2 };
  const arr: Node = { t: "arr", item: any, min: 0, max: Infinity, minLen: 2 };
  any.branches.push(obj, arr, strNode(0, Infinity), numNode(false, -Infinity, Infinity), litNode(["true", "false", "null"].map((s) => enc.encode(s))));
  return any;
}

const strNode = (min: number, max: number, re?: RegexAutomaton): Node =>
  ({ t: "str", min, max, minLen: 2 + Math.max(min, re ? re.minJson(re.init) : 0), ...(re ? { re } : {}) });

/** A JSON Schema pattern (an ECMAScript search) as a whole-string regex: unanchored ends match anything. */
function searchRegex(pattern: string): RegexAutomaton {
  const start = pattern.startsWith("^"), end = /(^|[^\\])(\\\\)*\$$/.test(pattern);
  const body = pattern.slice(start ? 1 : 0, end ? -1 : undefined);
  return new RegexAutomaton(`${start ? "" : "[\\s\\S]*"}(?:${body})${end ? "" : "[\\s\\S]*"}`);
}
function numNode(int: boolean, lo: number, hi: number): Node {
  const range = new NumberRange({ int, lo, hi });
  return { t: "num", range, minLen: range.minClose("") };
}
function litNode(options: Uint8Array[]): Node {
  const lit = new LiteralChoice(options);
  return { t: "lit", lit, minLen: lit.minLen };
}

type Schema = Record<string, unknown>;

export function compileSchema(root: unknown): Node {
  const refs = new Set<string>();
  const at = (s: unknown, path: string): Node => {
    if (s === true || (s && typeof s === "object" && Object.keys(s).every((k) => IGNORED.has(k)))) return anyNode();
    if (s === false || !s || typeof s !== "object" || Array.isArray(s)) throw new GrammarError(`${path}: not a schema`);
    const o = s as Schema;
    for (const k of Object.keys(o)) if (!IGNORED.has(k) && !HANDLED.has(k)) throw new GrammarError(`${path}: the keyword "${k}" is not supported`);
    if (typeof o.$ref === "string") return ref(o.$ref, path);
    if (o.const !== undefined) return litNode([enc.encode(JSON.stringify(o.const))]);
    if (Array.isArray(o.enum)) {
      if (o.enum.length === 0) throw new GrammarError(`${path}: enum is empty`);
      return litNode(o.enum.map((v) => enc.encode(JSON.stringify(v))));
    }
    const alts = (o.anyOf ?? o.oneOf) as unknown[] | undefined;
    if (alts) {
      if (!Array.isArray(alts) || alts.length === 0) throw new GrammarError(`${path}: anyOf must be a non-empty list`);
      return union(alts.map((a, i) => at(a, `${path}/anyOf/${i}`)), path);
    }
    const types = o.type === undefined ? null : Array.isArray(o.type) ? o.type : [o.type];
    if (!types) return o.properties ? typed("object", o, path) : anyNode();
    if (types.length === 0) throw new GrammarError(`${path}: type is empty`);
    return types.length === 1 ? typed(String(types[0]), o, path) : union(types.map((t) => typed(String(t), o, path)), path);
  };
  const typed = (type: string, o: Schema, path: string): Node => {
    const n = (k: string, d: number): number => {
      const v = o[k];
      if (v === undefined) return d;
      if (typeof v !== "number" || !Number.isFinite(v)) throw new GrammarError(`${path}: ${k} must be a number`);
      return v;
    };
    switch (type) {
      case "string": {
        const min = n("minLength", 0), max = n("maxLength", Infinity);
        if (min > max) throw new GrammarError(`${path}: minLength is above maxLength`);
        if (o.pattern !== undefined && typeof o.pattern !== "string") throw new GrammarError(`${path}: pattern must be a string`);
        let re: RegexAutomaton | undefined;
        try {
          re = typeof o.pattern === "string" ? searchRegex(o.pattern) : undefined;
        } catch (e) {
          throw new GrammarError(`${path}: pattern: ${(e as Error).message}`);
        }
        if (re && re.minChars(re.init) > max) throw new GrammarError(`${path}: pattern needs more than maxLength characters`);
        if (re && min > 0) throw new GrammarError(`${path}: pattern with minLength is not supported (say the length in the pattern)`);
        return strNode(Math.ceil(min), Math.floor(max), re);
      }
      case "integer":
      case "number":
        try {
          return numNode(type === "integer", n("minimum", -Infinity), n("maximum", Infinity));
        } catch (e) {
          throw new GrammarError(`${path}: ${(e as Error).message}`);
        }
      case "boolean": return litNode([enc.encode("true"), enc.encode("false")]);
      case "null": return litNode([enc.encode("null")]);
      case "array": {
        const min = n("minItems", 0), max = n("maxItems", Infinity);
        if (min > max) throw new GrammarError(`${path}: minItems is above maxItems`);
        if (Array.isArray(o.items)) throw new GrammarError(`${path}: tuple items are not supported`);
        const item = o.items === undefined ? anyNode() : at(o.items, `${path}/items`);
        return { t: "arr", item, min, max, minLen: 2 + min * item.minLen + Math.max(0, min - 1) };
      }
      case "object": return object(o, path);
      default: throw new GrammarError(`${path}: unknown type "${type}"`);
    }
  };
  const object = (o: Schema, path: string): Node => {
    const props = (o.properties ?? {}) as Record<string, unknown>;
    const required = new Set((o.required ?? []) as string[]);
    for (const r of required) if (!(r in props)) throw new GrammarError(`${path}: required property "${r}" has no schema in properties`);
    const list: Prop[] = Object.entries(props).map(([name, s]) => ({
      name, key: enc.encode(JSON.stringify(name)), node: at(s, `${path}/properties/${name}`), required: required.has(name),
    }));
    const extra = o.additionalProperties;
    // Without declared properties the object takes any keys (values per additionalProperties).
    const free = list.length === 0 && extra !== false ? (extra === undefined || extra === true ? anyNode() : at(extra, `${path}/additionalProperties`)) : null;
    const req = list.filter((p) => p.required);
    const minLen = 2 + req.reduce((a, p) => a + p.key.length + 1 + p.node.minLen, 0) + Math.max(0, req.length - 1);
    return { t: "obj", props: list, free, minLen };
  };
  const ref = (r: string, path: string): Node => {
    const m = /^#\/(\$defs|definitions)\/([^/]+)$/.exec(r);
    if (!m) throw new GrammarError(`${path}: only local $ref to #/$defs/NAME is supported (got ${r})`);
    if (refs.has(r)) throw new GrammarError(`${path}: recursive $ref ${r} is not supported`);
    const target = ((root as Schema)[m[1]] as Schema | undefined)?.[m[2]];
    if (target === undefined) throw new GrammarError(`${path}: $ref ${r} names nothing`);
    refs.add(r);
    try {
      return at(target, r.slice(1));
    } finally {
      refs.delete(r);
    }
  };
  return at(root, "#");
}

/** Alternatives are decided by their first byte, so each must start differently
 * (string / number / object / array / literal). */
function union(branches: Node[], path: string): Node {
  const firsts = branches.map(firstBytes);
  for (let i = 0; i < branches.length; i++)
    for (let j = 0; j < i; j++)
      if (firsts[i].some((b) => firsts[j].includes(b)))
        throw new GrammarError(`${path}: alternatives that can start with the same character are not supported`);
  return { t: "union", branches, minLen: Math.min(...branches.map((b) => b.minLen)) };
}

export function firstBytes(n: Node): number[] {
  switch (n.t) {
    case "str": return [0x22];
    case "obj": return [0x7b];
    case "arr": return [0x5b];
    case "lit": return [...new Set(n.lit.options.map((o) => o[0]))];
    case "num": return [..."-0123456789"].filter((c) => n.range.viable(c)).map((c) => c.charCodeAt(0));
    case "union": return n.branches.flatMap(firstBytes);
  }
}
