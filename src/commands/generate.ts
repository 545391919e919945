// `moe generate --model DIR (--ids 1,2,3 | --prompt TEXT | --chat TEXT) --max-tokens N
//  [--temperature T --top-p P --top-k K --seed S] [--json]
//  [--speculative mtp --draft-tokens K]`: one completion through the engine.
import { ModelEngine } from "../engine/engine.ts";
import { createBackend } from "./backend.ts";
import type { SamplingParams } from "../engine/types.ts";
import { loadTokenizer } from "../tokenizer/index.ts";
import { DEFAULT_MODEL, UsageError, intList, num, parse } from "./args.ts";

export async function generateCommand(argv: string[]): Promise<void> {
  const a = parse(argv, {
    model: { type: "string" }, ids: { type: "string" }, prompt: { type: "string" }, chat: { type: "string" },
    "max-tokens": { type: "string" }, temperature: { type: "string" }, "top-p": { type: "string" },
    "top-k": { type: "string" }, "min-p": { type: "string" }, seed: { type: "string" }, json: { type: "boolean" },
    scaling: { type: "string" }, "ignore-eos": { type: "boolean" }, speculative: { type: "string" },
    "draft-tokens": { type: "string" },
  });
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
  const backend = await createBackend({ model, scaling: a.scaling, mtp: speculative !== undefined, kvTokens: Math.max(prompt.length + maxTokens + 16, 256) });
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
