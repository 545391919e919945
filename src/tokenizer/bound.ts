// How many bytes of input one token can cover at most, and so how few tokens a text can become.
// A text of B bytes needs at least ceil(B / maxTokenBytes) tokens, which lets the gateway refuse a
// prompt that cannot fit the context from its byte length alone, before anyone tokenizes it. The
// bound only holds when the tokenizer never drops or shrinks input, so it is Infinity (no early
// refusal) for any normalizer or pre-tokenizer we cannot vouch for.

type Json = Record<string, unknown>;

// Unicode normalization shrinks text by at most 4x (a 4-byte mathematical letter -> 1 ASCII byte).
const NORMALIZER_SHRINK: Record<string, number> = { NFC: 4, NFD: 4, NFKC: 4, NFKD: 4 };
// Pre-tokenizers that only cut the text, never drop any of it.
const KEEPS_BYTES = new Set(["ByteLevel", "Digits", "Metaspace", "Punctuation", "UnicodeScripts"]);
const SPLIT_KEEPS = new Set(["Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"]);

/** How much the normalizer can shrink the text (1 = never), or Infinity when unknown. */
function normalizerShrink(n: unknown): number {
  if (n == null) return 1;
  const { type } = n as Json;
  if (type === "Sequence") {
    return ((n as Json).normalizers as unknown[] ?? []).reduce<number>((f, m) => f * normalizerShrink(m), 1);
  }
  return NORMALIZER_SHRINK[type as string] ?? Infinity;
}

function preTokenizerKeepsBytes(p: unknown): boolean {
  if (p == null) return true;
  const { type, behavior } = p as Json;
  if (type === "Sequence") return ((p as Json).pretokenizers as unknown[] ?? []).every(preTokenizerKeepsBytes);
  if (type === "Split") return SPLIT_KEEPS.has(behavior as string);
  return KEEPS_BYTES.has(type as string);
}

/** The most input bytes one token of this tokenizer.json can stand for; Infinity when unbounded. */
export function maxTokenBytes(tokenizerJson: Json): number {
  const shrink = normalizerShrink(tokenizerJson.normalizer);
  if (!Number.isFinite(shrink) || !preTokenizerKeepsBytes(tokenizerJson.pre_tokenizer)) return Infinity;
  const model = tokenizerJson.model as Json;
  const vocab = model?.vocab;
  // BPE and WordPiece keep a {token: id} map, Unigram a [token, score] list
  const tokens: string[] = Array.isArray(vocab) ? vocab.map((v) => String((v as unknown[])[0]))
    : vocab && typeof vocab === "object" ? Object.keys(vocab) : [];
  if (tokens.length === 0) return Infinity;
  for (const t of (tokenizerJson.added_tokens as Json[] | undefined) ?? []) tokens.push(String(t.content));
  // A token's UTF-8 length is never less than the raw bytes it covers (a ByteLevel character stands
  // for one byte in one or two UTF-8 bytes; "<0xE2>" stands for one byte in six).
  let most = 1;
  for (const t of tokens) most = Math.max(most, Buffer.byteLength(t));
  return most * shrink;
}

/** The fewest tokens `text` can become under a tokenizer whose tokens cover at most `perToken` bytes. */
export function fewestTokens(text: string, perToken: number): number {
  if (!Number.isFinite(perToken)) return 0;
  return Math.ceil(Buffer.byteLength(text) / perToken);
}
