// The vocabulary as the constraint engine sees it: the raw bytes each token stands for, which
// tokens are special (never allowed inside constrained text), the end tokens, and a byte trie of
// the ordinary tokens that the mask walks (one walk visits every token sharing a prefix once).

import { type Utf8, UTF8_IDLE, utf8Step } from "./automaton.ts";

const maskWords = (v: number) => Math.ceil(v / 32);

/** GPT-2's byte-level alphabet: printable bytes stand for themselves, the rest are shifted to
 * U+0100.. (what byte-level BPE vocabularies such as DeepSeek-V3's store). */
function byteDecoder(): Map<string, number> {
  const keep: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) keep.push(b);
  for (let b = 0xa1; b <= 0xac; b++) keep.push(b);
  for (let b = 0xae; b <= 0xff; b++) keep.push(b);
  const m = new Map<string, number>();
  for (const b of keep) m.set(String.fromCharCode(b), b);
  let n = 0;
  for (let b = 0; b < 256; b++) if (!keep.includes(b)) m.set(String.fromCharCode(256 + n++), b);
  return m;
}
const BYTE_OF = byteDecoder();

/** A byte-level BPE token string as its raw bytes; null when it is not byte-level. */
export function byteLevelBytes(token: string): Uint8Array | null {
  const out = new Uint8Array(token.length);
  for (let i = 0; i < token.length; i++) {
    const b = BYTE_OF.get(token[i]);
    if (b === undefined) return null;
    out[i] = b;
  }
  return out;
}

/** Tokens that are plain JSON string content (no quote, backslash or control byte, whole UTF-8
 * characters): inside a string any of them may follow, so the mask takes them as a set (by their
 * length in characters) and walks only the rest of the vocabulary. */
export interface ContentTokens {
  chars: Int32Array; // characters per token, -1 when not plain content
  maxChars: number;
  rest: TokenTrie; // the tokens that are not plain content
  upTo: Map<number, Uint32Array>; // cached masks: plain content of at most k characters
}

export interface TokenVocab {
  /** The model's vocabulary size (may exceed the tokenizer's): masks have ceil(size / 32) words. */
  readonly size: number;
  /** bytes[id]: what token id stands for; null for special tokens and ids without a token. */
  readonly bytes: readonly (Uint8Array | null)[];
  /** Tokens that end the output (the model's EOS), allowed once the grammar is complete. */
  readonly end: readonly number[];
  readonly trie: TokenTrie;
  /** byteToken[b]: a token standing for the single byte b, or -1 (closure is guaranteed only for
   * bytes that have one; byte-level BPE vocabularies have all 256). */
  readonly byteToken: Int32Array;
  /** Built on first use by a JSON grammar. */
  content?: ContentTokens;
}

/** A trie over token bytes in flat arrays: node 0 is the root; children are a first-child /
 * next-sibling list; tok[n] is the first token ending at n (more in tokNext, e.g. duplicates). */
export interface TokenTrie {
  first: Int32Array;
  next: Int32Array;
  byte: Uint8Array;
  tok: Int32Array;
  tokNext: Int32Array; // by token id
  nodes: number;
}

export function buildTrie(bytes: readonly (Uint8Array | null)[]): TokenTrie {
  const kids: Map<number, number>[] = [new Map()];
  const byteOf: number[] = [0];
  const tokAt: number[] = [-1];
  const tokNext = new Int32Array(bytes.length).fill(-1);
  bytes.forEach((bs, id) => {
    if (!bs || bs.length === 0) return;
    let n = 0;
    for (const b of bs) {
      let c = kids[n].get(b);
      if (c === undefined) {
        c = kids.length;
        kids.push(new Map());
        byteOf.push(b);
        tokAt.push(-1);
        kids[n].set(b, c);
      }
      n = c;
    }
    tokNext[id] = tokAt[n];
    tokAt[n] = id;
  });
  const N = kids.length, first = new Int32Array(N).fill(-1), next = new Int32Array(N).fill(-1);
  for (let n = 0; n < N; n++) {
    const cs = [...kids[n].entries()].sort((a, b) => a[0] - b[0]).map((e) => e[1]);
    if (cs.length) first[n] = cs[0];
    for (let i = 0; i + 1 < cs.length; i++) next[cs[i]] = cs[i + 1];
  }
  return { first, next, byte: Uint8Array.from(byteOf), tok: Int32Array.from(tokAt), tokNext, nodes: N };
}

export function makeVocab(size: number, bytes: (Uint8Array | null)[], end: readonly number[]): TokenVocab {
  const all = bytes.slice(0, size);
  while (all.length < size) all.push(null);
  const byteToken = new Int32Array(256).fill(-1);
  all.forEach((bs, id) => { if (bs && bs.length === 1 && byteToken[bs[0]] < 0) byteToken[bs[0]] = id; });
  const v: TokenVocab = { size, bytes: all, end: [...end], trie: buildTrie(all), byteToken };
  contentUpTo(contentTokens(v), 1, maskWords(size)); // once, here, rather than in a request's step
  return v;
}

/** Characters of a token that is plain JSON string content, else -1. */
function contentChars(bs: Uint8Array): number {
  let n = 0, u: Utf8 = UTF8_IDLE;
  for (const b of bs) {
    if (u.need === 0 && (b < 0x20 || b === 0x22 || b === 0x5c)) return -1;
    const r = utf8Step(u, b);
    if (!r) return -1;
    if ("cp" in r) {
      u = UTF8_IDLE;
      n++;
    } else u = r.partial;
  }
  return u.need === 0 ? n : -1;
}

export function contentTokens(v: TokenVocab): ContentTokens {
  if (v.content) return v.content;
  const chars = new Int32Array(v.size).fill(-1);
  let maxChars = 0;
  const rest: (Uint8Array | null)[] = v.bytes.map((bs, id) => {
    if (!bs) return null;
    const n = contentChars(bs);
    chars[id] = n;
    if (n > maxChars) maxChars = n;
    return n < 0 ? bs : null;
  });
  v.content = { chars, maxChars, rest: buildTrie(rest), upTo: new Map() };
  return v.content;
}

/** Masks of plain content up to k characters are kept for every k up to this (16 KiB each at
 * V = 129280), built once per vocabulary; strings with maxLength look them up every step. */
const EAGER_CHARS = 64;

/** The mask of plain-content tokens of at most k characters. */
export function contentUpTo(c: ContentTokens, k: number, words: number): Uint32Array {
  k = Math.min(k, c.maxChars);
  let m = c.upTo.get(k);
  if (m) return m;
  if (c.upTo.size === 0) { // first use: every k up to EAGER_CHARS at once, each from the last
    const byChars: number[][] = Array.from({ length: c.maxChars + 1 }, () => []);
    for (let t = 0; t < c.chars.length; t++) if (c.chars[t] >= 1) byChars[c.chars[t]].push(t);
    let prev = new Uint32Array(words);
    for (let j = 1; j <= Math.min(EAGER_CHARS, c.maxChars); j++) {
      const cur = prev.slice();
      for (const t of byChars[j]) cur[t >>> 5] |= 1 << (t & 31);
      c.upTo.set(j, (prev = cur));
    }
    const all = c.upTo.get(Math.min(EAGER_CHARS, c.maxChars))!.slice();
    for (let j = EAGER_CHARS + 1; j <= c.maxChars; j++) for (const t of byChars[j]) all[t >>> 5] |= 1 << (t & 31);
    c.upTo.set(c.maxChars, all);
    m = c.upTo.get(k);
    if (m) return m;
  }
  m = new Uint32Array(words);
  for (let t = 0; t < c.chars.length; t++) if (c.chars[t] >= 1 && c.chars[t] <= k) m[t >>> 5] |= 1 << (t & 31);
  if (c.upTo.size >= EAGER_CHARS + 16) { // beyond the eager ones, keep a few
    for (const key of c.upTo.keys()) if (key > EAGER_CHARS && key !== c.maxChars) { c.upTo.delete(key); break; }
  }
  c.upTo.set(k, m);
  return m;
}

/** What a tokenizer must offer: its token strings by id and which ids are special. */
export interface TokenSource {
  idToToken(id: number): string | undefined;
  readonly vocabSize: number;
  isSpecial?(id: number): boolean;
}

/** The vocabulary of a byte-level BPE tokenizer (DeepSeek-V3's and the fixtures'). Added tokens
 * that are not byte-level strings (`<｜end▁of▁sentence｜>`, `<think>`...) count as special: a
 * constrained output never contains them. */
export function vocabFromTokenizer(t: TokenSource, size: number, end: readonly number[]): TokenVocab {
  const bytes: (Uint8Array | null)[] = [];
  for (let id = 0; id < Math.min(size, t.vocabSize); id++) {
    const s = t.idToToken(id);
    bytes.push(s === undefined || t.isSpecial?.(id) ? null : byteLevelBytes(s));
  }
  return makeVocab(size, bytes, end);
}

const shared = new WeakMap<object, TokenVocab>();

/** vocabFromTokenizer, built once per tokenizer object and model size (the trie of a 129k
 * vocabulary takes most of a second and some megabytes: every grammar user shares it). */
export function sharedVocab(t: TokenSource, size: number, end: readonly number[]): TokenVocab {
  let v = shared.get(t);
  if (!v || v.size !== size || v.end.join() !== end.join()) {
    v = vocabFromTokenizer(t, size, end);
    shared.set(t, v);
  }
  return v;
}
