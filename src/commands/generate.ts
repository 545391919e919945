// `moe generate`: one completion through the engine (flags: GENERATE below, or --help).
import { ModelEngine } from "../engine/engine.ts";
import { createBackend } from "./backend.ts";
import { KV_CACHE_DTYPE_FLAG, kvCacheDtype } from "./kv-cache-flag.ts";
import type { SamplingParams } from "../engine/types.ts";
import { loadTokenizer } from "../tokenizer/index.ts";
import { type CommandSpec, DEFAULT_MODEL, UsageError, intList, num, parseSpec } from "./args.ts";

export const GENERATE = {
  name: "moe generate",
  summary: "One completion through the engine, printed as it is generated (--json: {\"ids\", \"text\"} at the end).",
  flags: {
    model: { type: "string", arg: "DIR", help: "model directory (default: the bundled models/fortune-dsv3)" },
    scaling: { type: "string", arg: "FILE", help: "scaling config (configs/scaling/*.yaml, or \"direct\": no actors)" },
    ids: { type: "string", arg: "1,2,3", help: "the prompt as comma-separated token ids" },
    prompt: { type: "string", arg: "TEXT", help: "the prompt as text (tokenized with special tokens)" },
    chat: { type: "string", arg: "TEXT", help: "one user message, through the model's chat template" },
    "max-tokens": { type: "string", arg: "N", help: "tokens to generate at most (default 64)" },
    temperature: { type: "string", arg: "T", help: "sampling temperature; 0 is greedy (default 0)" },
    "top-p": { type: "string", arg: "P", help: "nucleus sampling mass in (0, 1] (default 1)" },
    "top-k": { type: "string", arg: "K", help: "sample from the K most likely tokens; 0 is off (default 0)" },
    "min-p": { type: "string", arg: "P", help: "drop tokens less likely than P times the top one (default 0)" },
    seed: { type: "string", arg: "S", help: "seed of the sampler (reproducible sampling)" },
    "ignore-eos": { type: "boolean", help: "keep generating past the end-of-sequence token" },
    speculative: { type: "string", arg: "mtp", help: "speculative decoding with the model's MTP layer" },
    "draft-tokens": { type: "string", arg: "K", help: "draft tokens per step with --speculative mtp (default 1)" },
    "kv-cache-dtype": KV_CACHE_DTYPE_FLAG,
    json: { type: "boolean", help: "print {\"ids\", \"text\"} of the generated tokens as one JSON line" },
  },
  notes: "Give exactly one of --ids, --prompt, --chat.",
} as const satisfies CommandSpec;

export async function generateCommand(argv: string[]): Promise<void> {
  const a = parseSpec(argv, GENERATE);
  const kvDtype = kvCacheDtype(a["kv-cache-dtype"]);
  const model = a.model ?? DEFAULT_MODEL;
  const given = [a.ids, a.prompt, a.chat].filter((x) => x !== undefined).length;
  if (given !== 1) throw new UsageError("give exactly one of --ids, --prompt, --chat");
  const tok = await loadTokenizer(model);
  const prompt = a.ids !== undefined ? intList(a.ids, "--ids")
    : a.prompt !== undefined ? tok.encode(a.prompt, { addSpecialTokens: true })
    : tok.encodeChat([{ role: "user", content: a.chat! }], { addGenerationPrompt: true });
  const maxTokens = num(a["max-tokens"], "max-tokens", 64, (n) => Number.isInteger(n) && n > 0);
  const params: SamplingParams = {
    temperature: num(a.temperature, "temperature", 0, (n) => n >= 0),
    top_p: num(a["top-p"], "top-p", 1, (n) => n > 0 && n <= 1),
    top_k: num(a["top-k"], "top-k", 0, Number.isInteger),
    min_p: num(a["min-p"], "min-p", 0, (n) => n >= 0 && n <= 1),
    presence_penalty: 0, frequency_penalty: 0, repetition_penalty: 1,
    seed: a.seed === undefined ? null : num(a.seed, "seed", 0, Number.isInteger),
    max_tokens: maxTokens, stop_token_ids: [], ignore_eos: a["ignore-eos"] ?? false,
    logprobs: null, prompt_logprobs: false,
  };
  if (a.speculative !== undefined && a.speculative !== "mtp") throw new UsageError(`--speculative ${a.speculative}: only "mtp" is supported`);
  const draftTokens = num(a["draft-tokens"], "draft-tokens", 1, (n) => Number.isInteger(n) && n > 0);
  const speculative = a.speculative === "mtp" ? { k: draftTokens } : undefined;
  const backend = await createBackend({
    model, scaling: a.scaling, mtp: speculative !== undefined, kvTokens: Math.max(prompt.length + maxTokens + 16, 256),
    kvCacheDtype: kvDtype,
  });
  const engine = new ModelEngine(backend, { speculative });
  try {
    const ids: number[] = [];
    let printed = "";
    for await (const ev of engine.generate({ id: "cli", prompt_ids: prompt, params })) {
      if (ev.type === "token") {
        ids.push(ev.id);
        if (!a.json) {
          const text = tok.decode(ids, { skipSpecialTokens: true });
          // Print only whole characters: a partial UTF-8 sequence decodes to U+FFFD until complete.
          if (!text.endsWith("\uFFFD")) {
            process.stdout.write(text.slice(printed.length));
            printed = text;
          }
        }
      } else if (ev.type === "done" && ev.finish_reason === "error") throw new Error(`generation failed: ${ev.error}`);
    }
    const text = tok.decode(ids, { skipSpecialTokens: true });
    if (a.json) process.stdout.write(JSON.stringify({ ids, text }) + "\n");
    else process.stdout.write(text.slice(printed.length) + "\n");
  } finally {
    await engine.close();
  }
}
