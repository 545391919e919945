// The allowed-token mask of one automaton state: a walk of the vocabulary's byte trie that steps
// the automaton once per trie edge, so tokens sharing a prefix share the work and a dead prefix
// cuts off every token under it. Masks are cached per state key (with the most closing bytes any
// allowed token leaves, so a cached mask is reused only while the token budget cannot cut it).
import type { ByteAutomaton } from "./automaton.ts";
import { contentTokens, contentUpTo, type TokenTrie, type TokenVocab } from "./vocab.ts";

interface Cached {
  mask: Uint32Array;
  need: number; // the largest minClose after any allowed token
}

const CACHE_ENTRIES = 128; // per grammar; masks are 16 KiB at V = 129280

export class MaskCache {
  private readonly entries = new Map<string, Cached>();
  hits = 0;
  misses = 0;

  /** ORs into `out` the tokens allowed from state s with `room` bytes-worth of tokens left after
   * this one (Infinity: no budget). */
  fill<S>(a: ByteAutomaton<S>, s: S, vocab: TokenVocab, room: number, out: Uint32Array): void {
    const key = a.key(s);
    let c = this.entries.get(key);
    if (c) {
      this.entries.delete(key); // most recently used last
      this.entries.set(key, c);
    }
    if (!c) {
      this.misses++;
      const mask = new Uint32Array(out.length);
      const need = walk(a, s, vocab, Infinity, mask);
      c = { mask, need };
      this.entries.set(key, c);
      if (this.entries.size > CACHE_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    } else this.hits++;
    if (c.need <= room) {
      for (let i = 0; i < out.length; i++) out[i] |= c.mask[i];
      return;
    }
    // The budget is short: walk again, keeping only tokens after which the output can still close.
    walk(a, s, vocab, room, out);
  }
}

/** Sets the bits of tokens allowed from s whose minClose is within room; returns the largest
 * minClose among the tokens the grammar allows. Inside a JSON string, plain content tokens are
 * taken as a set and only the others are walked. */
export function walk<S>(a: ByteAutomaton<S>, s0: S, vocab: TokenVocab, room: number, out: Uint32Array): number {
  const free = a.freeText?.(s0) ?? null;
  if (!free) return walkTrie(a, s0, vocab.trie, room, out);
  // A plain content token of n characters leaves need0 - min(n, short) closing bytes (it can only
  // meet minLength sooner), so it fits the budget when min(n, short) >= need0 - room.
  const c = contentTokens(vocab), need0 = a.minClose(s0), d = need0 - room;
  if (free.max > 0 && d <= 0) {
    const m = contentUpTo(c, free.max, out.length);
    for (let i = 0; i < out.length; i++) out[i] |= m[i];
  } else if (free.max > 0 && d <= free.short) {
    for (let t = 0; t < c.chars.length; t++) if (c.chars[t] >= d && c.chars[t] <= free.max) out[t >>> 5] |= 1 << (t & 31);
  }
  return Math.max(free.max > 0 ? need0 : 0, walkTrie(a, s0, c.rest, room, out));
}

function walkTrie<S>(a: ByteAutomaton<S>, s0: S, trie: TokenTrie, room: number, out: Uint32Array): number {
  const { first, next, byte, tok, tokNext } = trie;
  let need = 0;
  const visit = (node: number, s: S): void => {
    for (let c = first[node]; c >= 0; c = next[c]) {
      const s2 = a.step(s, byte[c]);
      if (s2 === null) continue;
      if (tok[c] >= 0) {
        const m = a.minClose(s2);
        if (m > need) need = m;
        if (m <= room) for (let t = tok[c]; t >= 0; t = tokNext[t]) out[t >>> 5] |= 1 << (t & 31);
      }
      if (first[c] >= 0) visit(c, s2);
    }
  };
  visit(0, s0);
  return need;
}

export function maskWords(vocabSize: number): number {
  return Math.ceil(vocabSize / 32);
}

export function allowed(mask: Uint32Array, t: number): boolean {
  return ((mask[t >>> 5] >>> (t & 31)) & 1) === 1;
}
