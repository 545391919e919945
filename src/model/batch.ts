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

/** Rows of a batch as a batch of their own, each row a one-row sequence that sees its own
 * sequence's positions up to itself (the causal view it has in `b`). */
export function selectRows(b: ForwardBatch, rows: Int32Array): ForwardBatch {
  const R = rows.length, M = b.maxBlocks;
  const tokens = new Int32Array(R), positions = new Int32Array(R), slots = new Int32Array(R);
  const cuQ = new Int32Array(R + 1), ctxLen = new Int32Array(R), blockTables = new Int32Array(R * M);
  for (let i = 0, s = 0; i < R; i++) {
    const r = rows[i];
    if (r < 0 || r >= b.T) throw new Error(`selectRows: row ${r} is outside the batch of ${b.T}`);
    s = r >= b.cuQ[s] ? s : 0;
    while (r >= b.cuQ[s + 1]) s++;
    tokens[i] = b.tokens[r];
    positions[i] = b.positions[r];
    slots[i] = b.slots[r];
    cuQ[i + 1] = i + 1;
    ctxLen[i] = b.ctxLen[s] - (b.cuQ[s + 1] - 1 - r);
    blockTables.set(b.blockTables.subarray(s * M, (s + 1) * M), i * M);
  }
  return { T: R, tokens, positions, slots, S: R, cuQ, ctxLen, blockTables, maxBlocks: M };
}
