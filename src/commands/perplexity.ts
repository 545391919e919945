// `moe perplexity`: the mean next-token loss over non-overlapping windows of a token stream,
// windowed as fortune-dsv3/eval/val.json describes: window j = tokens[L*j : L*j + L + 1]; the
// model reads the first L (a fresh sequence) and is scored on predicting tokens 1..L. The stream
// is a JSON file of token ids (--tokens) or a text file tokenized with the model's tokenizer
// (--text; one BOS first, as the tokenizer adds it). Progress goes to stderr, the result to stdout.
import { readFileSync } from "node:fs";
import { progress } from "../progress.ts";
import { loadTokenizer } from "../tokenizer/index.ts";
import { createBackend } from "./backend.ts";
import { KV_CACHE_DTYPE_FLAG, kvCacheDtype } from "./kv-cache-flag.ts";
import { type CommandSpec, DEFAULT_MODEL, UsageError, num, parseSpec } from "./args.ts";

export const PERPLEXITY = {
  name: "moe perplexity",
  summary: "Loss and perplexity of the model over a token stream, in windows of --context tokens.",
  flags: {
    model: { type: "string", arg: "DIR", help: "model directory (default: the bundled models/fortune-dsv3)" },
    scaling: { type: "string", arg: "FILE", help: "scaling config (configs/scaling/*.yaml, or \"direct\": no actors)" },
    tokens: { type: "string", arg: "FILE", help: "JSON token ids: [1, 2, ...] or {\"tokens\": [...]} (e.g. eval/val.json)" },
    text: { type: "string", arg: "FILE", help: "a text file, tokenized with the model's tokenizer" },
    context: { type: "string", arg: "L", help: "window length: tokens read per window (default 256)" },
    windows: { type: "string", arg: "N", help: "windows to score (default: every whole window of the stream)" },
    batch: { type: "string", arg: "B", help: "windows run together in one step (default 4)" },
    "kv-cache-dtype": KV_CACHE_DTYPE_FLAG,
    json: { type: "boolean", help: "print {\"loss\", \"perplexity\", \"tokens\", \"windows\"} as one JSON line" },
  },
  notes: "Give exactly one of --tokens, --text.",
} as const satisfies CommandSpec;

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

async function readText(path: string, model: string): Promise<number[]> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new UsageError(`--text ${path}: cannot read (${(e as Error).message})`);
  }
  const tok = await loadTokenizer(model);
  return tok.encode(text, { addSpecialTokens: true });
}

export async function perplexityCommand(argv: string[]): Promise<void> {
  const a = parseSpec(argv, PERPLEXITY);
  const kvDtype = kvCacheDtype(a["kv-cache-dtype"]);
  if ((a.tokens === undefined) === (a.text === undefined)) throw new UsageError("give exactly one of --tokens FILE, --text FILE");
  const model = a.model ?? DEFAULT_MODEL;
  const tokens = a.tokens !== undefined ? readTokens(a.tokens) : await readText(a.text!, model);
  const L = num(a.context, "context", 256, (n) => Number.isInteger(n) && n > 1);
  const available = Math.floor((tokens.length - 1) / L);
  if (available === 0) throw new UsageError(`the stream has ${tokens.length} tokens: fewer than one window of --context ${L} plus one`);
  const windows = num(a.windows, "windows", available, (n) => Number.isInteger(n) && n > 0 && n <= available);
  const B = num(a.batch, "batch", 4, (n) => Number.isInteger(n) && n > 0);
  const backend = await createBackend({ model, scaling: a.scaling, kvTokens: B * (L + 16), kvCacheDtype: kvDtype });
  const perSeq = Math.ceil(L / backend.pageSize);
  const shown = progress("perplexity", windows, { unit: "count" });
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
      shown.add(work.length);
    }
  } finally {
    await backend.close();
  }
  const loss = nll / scored;
  shown.end(`${windows} windows of ${L}, perplexity ${Math.exp(loss).toFixed(3)}`);
  const out = { loss, perplexity: Math.exp(loss), tokens: scored, windows };
  process.stdout.write(a.json ? JSON.stringify(out) + "\n" : `loss ${loss.toFixed(6)}  perplexity ${out.perplexity.toFixed(3)}  over ${scored} tokens (${windows} windows of ${L})\n`);
}
