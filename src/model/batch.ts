// What one forward step computes: T tokens from S sequences, each sequence's rows contiguous.

export interface ForwardBatch {
  readonly T: number;
  readonly tokens: Int32Array; // [T]
  readonly positions: Int32Array; // [T] absolute positions
  readonly slots: Int32Array; // [T] KV cache slot = page * pageSize + offset
  readonly S: number;
  readonly cuQ: Int32Array; // [S+1] row ranges
  readonly ctxLen: Int32Array; // [S] cached positions after this step
  readonly blockTables: Int32Array; // [S * maxBlocks]
  readonly maxBlocks: number;
}

/** One sequence's share of a step: `tokens` fed at positions start..start+n-1 over its pages. */
export interface SeqStep {
  tokens: ArrayLike<number>;
  start: number;
  pages: ArrayLike<number>;
}

export function buildBatch(steps: readonly SeqStep[], pageSize: number): ForwardBatch {
  const S = steps.length;
  const T = steps.reduce((a, s) => a + s.tokens.length, 0);
  const maxBlocks = Math.max(1, ...steps.map((s) => s.pages.length));
  const tokens = new Int32Array(T), positions = new Int32Array(T), slots = new Int32Array(T);
  const cuQ = new Int32Array(S + 1), ctxLen = new Int32Array(S), blockTables = new Int32Array(S * maxBlocks);
  let t = 0;
  steps.forEach((s, i) => {
    cuQ[i] = t;
    const end = s.start + s.tokens.length;
    if (end > s.pages.length * pageSize) throw new Error(`sequence ${i} needs ${end} cache slots but holds ${s.pages.length} pages`);
    for (let j = 0; j < s.tokens.length; j++, t++) {
      const pos = s.start + j;
      tokens[t] = s.tokens[j];
      positions[t] = pos;
      slots[t] = s.pages[Math.floor(pos / pageSize)] * pageSize + (pos % pageSize);
    }
    ctxLen[i] = end;
    for (let b = 0; b < s.pages.length; b++) blockTables[i * maxBlocks + b] = s.pages[b];
  });
  cuQ[S] = t;
  return { T, tokens, positions, slots, S, cuQ, ctxLen, blockTables, maxBlocks };
}
