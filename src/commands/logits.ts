// `moe logits`: raw logits as JSON. Row 0 is the last prompt position after prefill, then one
// row per --decode token fed alone.
import { createBackend } from "./backend.ts";
import { KV_CACHE_DTYPE_FLAG, kvCacheDtype } from "./kv-cache-flag.ts";
import { type CommandSpec, DEFAULT_MODEL, UsageError, intList, parseSpec } from "./args.ts";

export const LOGITS = {
  name: "moe logits",
  summary: "Raw logits as JSON ({\"logits\": [[...]]}): the last prompt position, then one row per decode token fed alone.",
  flags: {
    model: { type: "string", arg: "DIR", help: "model directory (default: the bundled models/fortune-dsv3)" },
    scaling: { type: "string", arg: "FILE", help: "scaling config (configs/scaling/*.yaml, or \"direct\": no actors)" },
    ids: { type: "string", arg: "3,14,15", help: "the prompt as comma-separated token ids (required)" },
    decode: { type: "string", arg: "9,2,6", help: "tokens fed one at a time after the prompt, one row each" },
    mtp: { type: "boolean", help: "add mtp_logits: the MTP layer's row for every prompt position but the last" },
    "kv-cache-dtype": KV_CACHE_DTYPE_FLAG,
  },
} as const satisfies CommandSpec;

export async function logitsCommand(argv: string[]): Promise<void> {
  const a = parseSpec(argv, LOGITS);
  const ids = intList(a.ids, "--ids"), decode = intList(a.decode, "--decode");
  if (ids.length === 0) throw new UsageError("--ids is required (comma-separated token ids)");
  const total = ids.length + decode.length;
  const backend = await createBackend({
    model: a.model ?? DEFAULT_MODEL, scaling: a.scaling, kvTokens: Math.max(total, 16) * 2, mtp: a.mtp, kvCacheDtype: kvCacheDtype(a["kv-cache-dtype"]),
  });
  try {
    const V = backend.config.vocab_size;
    for (const id of [...ids, ...decode]) if (id >= V) throw new UsageError(`token id ${id} is outside the vocabulary [0, ${V})`);
    const pages = Array.from({ length: Math.ceil(total / backend.pageSize) }, (_, i) => i);
    const rows: number[][] = [];
    const [first] = await backend.step(0, [{ seq: "cli", tokens: ids, start: 0, pages, logits: "last" }]);
    rows.push(Array.from(first.logits!));
    for (let j = 0; j < decode.length; j++) {
      // `cache`: a restarted attention actor refuses the row instead of answering from nothing.
      const [r] = await backend.step(0, [{ seq: "cli", tokens: [decode[j]], start: ids.length + j, pages, logits: "last", cache: first.cache }]);
      if (r.stale) throw new Error("the attention actor lost its cache (restarted): run the command again");
      rows.push(Array.from(r.logits!));
    }
    const out: { logits: number[][]; mtp_logits?: number[][] } = { logits: rows };
    if (a.mtp) {
      if (!backend.mtpLogits || backend.config.num_nextn_predict_layers === 0) throw new UsageError("this model has no MTP layer");
      const m = await backend.mtpLogits(ids, pages);
      out.mtp_logits = Array.from({ length: ids.length - 1 }, (_, i) => Array.from(m.subarray(i * V, (i + 1) * V)));
    }
    process.stdout.write(JSON.stringify(out) + "\n");
  } finally {
    await backend.close();
  }
}
