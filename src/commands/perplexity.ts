// `moe perplexity --model DIR --tokens FILE [--windows N] [--context L] --json`: the mean
// next-token loss over non-overlapping windows of a token stream, windowed as
// fortune-dsv3/eval/val.json describes: window j = tokens[L*j : L*j + L + 1]; the model reads
// the first L (a fresh sequence) and is scored on predicting tokens 1..L.
import { readFileSync } from "node:fs";
import { createBackend } from "./backend.ts";
import { DEFAULT_MODEL, UsageError, num, parse } from "./args.ts";

function readTokens(path: string): number[] {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new UsageError(`--tokens ${path}: cannot read JSON (${(e as Error).message})`);
  }
  const t = Array.isArray(raw) ? raw : (raw as { tokens?: unknown }).tokens;
  if (!Array.isArray(t) || !t.every((x) => Number.isInteger(x) && x >= 0)) throw new UsageError(`--tokens ${path}: expected a list of token ids or {"tokens": [...]}`);
  return t as number[];
}

export async function perplexityCommand(argv: string[]): Promise<void> {
  const a = parse(argv, {
    model: { type: "string" }, tokens: { type: "string" }, windows: { type: "string" }, context: { type: "string" },
    json: { type: "boolean" }, scaling: { type: "string" }, batch: { type: "string" },
  });
  if (!a.tokens) throw new UsageError("--tokens FILE is required");
  const tokens = readTokens(a.tokens);
  const L = num(a.context, "context", 256, (n) => Number.isInteger(n) && n > 1);
  const available = Math.floor((tokens.length - 1) / L);
  const windows = num(a.windows, "windows", available, (n) => Number.isInteger(n) && n > 0 && n <= available);
  const B = num(a.batch, "batch", 4, (n) => Number.isInteger(n) && n > 0);
  const backend = await createBackend({ model: a.model ?? DEFAULT_MODEL, scaling: a.scaling, kvTokens: B * (L + 16) });
  const perSeq = Math.ceil(L / backend.pageSize);
  let nll = 0, scored = 0;
  try {
    for (let w0 = 0; w0 < windows; w0 += B) {
      const work = [];
      for (let w = w0; w < Math.min(windows, w0 + B); w++) {
        const pages = Array.from({ length: perSeq }, (_, i) => (w - w0) * perSeq + i);
        // The runner scores each next token where the logits are: L numbers come back, not L x vocab.
        work.push({ seq: `w${w}`, tokens: tokens.slice(L * w, L * w + L), start: 0, pages, targets: tokens.slice(L * w + 1, L * w + L + 1) });
      }
      const res = await backend.step(0, work);
      for (const r of res) {
        if (r.error) throw new Error(`${r.seq}: ${r.error}`);
        for (const lp of r.logprobs!) nll -= lp;
        scored += r.logprobs!.length;
      }
    }
  } finally {
    await backend.close();
  }
  const loss = nll / scored;
  const out = { loss, perplexity: Math.exp(loss), tokens: scored, windows };
  process.stdout.write(a.json ? JSON.stringify(out) + "\n" : `loss ${loss.toFixed(6)}  perplexity ${out.perplexity.toFixed(3)}  over ${scored} tokens (${windows} windows of ${L})\n`);
}
