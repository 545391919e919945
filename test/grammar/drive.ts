// A random "model" for constraint tests: at every step it picks uniformly among the tokens the
// mask allows (the harshest sampler there is: any allowed token, however unlikely), so the
// outputs cover what the grammar lets through, not what a trained model would write.
import { allowed, type Grammar, makeVocab, maskWords, type TokenVocab } from "../../src/grammar/index.ts";
import { seededRandom } from "../../src/engine/sequence.ts";

export interface Drive {
  text: string;
  tokens: number[];
  ended: "eos" | "done" | "length";
}

/** Generates under g with at most maxTokens tokens, as the engine does (budgeted masks). */
export function drive(g: Grammar, seed: number, maxTokens: number): Drive {
  const v = g.vocab, rand = seededRandom(seed), m = g.start();
  const mask = new Uint32Array(maskWords(v.size)), tokens: number[] = [];
  for (let i = 0; i < maxTokens; i++) {
    m.fill(mask, maxTokens - i);
    const ok: number[] = [];
    for (let w = 0; w < mask.length; w++) if (mask[w]) for (let b = 0; b < 32; b++) if ((mask[w] >>> b) & 1) ok.push(w * 32 + b);
    if (ok.length === 0) throw new Error(`no token allowed after ${JSON.stringify(text(v, tokens))}`);
    const t = ok[Math.floor(rand() * ok.length)];
    if (!allowed(mask, t) || !m.accept(t)) throw new Error(`token ${t} in the mask was refused`);
    if (v.end.includes(t)) return { text: text(v, tokens), tokens, ended: "eos" };
    tokens.push(t);
    if (m.done()) return { text: text(v, tokens), tokens, ended: "done" };
  }
  return { text: text(v, tokens), tokens, ended: "length" };
}

export function text(v: TokenVocab, tokens: number[]): string {
  const bytes: number[] = [];
  for (const t of tokens) bytes.push(...(v.bytes[t] ?? []));
  return new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(bytes));
}

/** A small byte-level vocabulary: every byte, some JSON-ish merges, and an EOS. */
export function toyVocab(): TokenVocab {
  const enc = new TextEncoder();
  const merges = ['{"', '":', '",', '"}', '":"', "true", "false", "null", "12", "345", "-1", ".5", " ", ", ", ': "', "ab", "hello",
    "}", "{}", "[]", '["', '"]', "],", "},", '\\"', "\\u00e9", "é", "日本", "\\n", "ok", '"ok"', "0.", "00", "e5"];
  const bytes: (Uint8Array | null)[] = [];
  for (let b = 0; b < 256; b++) bytes.push(new Uint8Array([b]));
  for (const m of merges) bytes.push(enc.encode(m));
  bytes.push(null); // EOS: special
  return makeVocab(bytes.length, bytes, [bytes.length - 1]);
}
