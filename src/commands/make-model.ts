// `make-model`: writes a random-weight DeepSeek-V3-format checkpoint from a preset shape.
// Progress (a bar on a terminal, a few lines otherwise) and the summary go to stderr.
import { resolve } from "node:path";
import { isPresetName, presetSpec, PRESETS } from "../checkpoint/presets.ts";
import { writeCheckpoint, type WeightFormat } from "../checkpoint/writer.ts";
import { progress } from "../progress.ts";
import { type CommandSpec, HelpRequested, UsageError, parseSpec, usage } from "./args.ts";

export const MAKE_MODEL = {
  name: "moe make-model",
  summary: "Writes a random-weight checkpoint in the real Hugging Face DeepSeek-V3 format (safetensors shards, index, config, tokenizer).",
  flags: {
    preset: { type: "string", arg: "NAME", help: `the model shape (required): ${Object.keys(PRESETS).join(", ")}` },
    out: { type: "string", arg: "DIR", help: "output directory (required; created if missing)" },
    format: { type: "string", arg: "fp8|bf16", default: "fp8", help: "projection weights as FP8 E4M3 with 128x128 block scales, or BF16 (default fp8)" },
    seed: { type: "string", arg: "S", help: "seed of the random weights (default 0)" },
    layers: { type: "string", arg: "N", help: "override the preset's number of layers" },
    "tokenizer-from": { type: "string", arg: "DIR", help: "copy tokenizer.json and tokenizer_config.json from DIR (default models/fortune-dsv3); vocab_size grows to cover its ids (129280 for DeepSeek-V3's)" },
    "fp8-eh-proj": { type: "boolean", default: false, help: "store the MTP eh_proj as FP8 too (DeepSeek ships it BF16)" },
    "router-skew": { type: "string", arg: "S", help: "make some experts much hotter: gate correction biases fall as S*0.1*ln(1+e) from expert 0 (Zipf-like, exponent S >= 0; default 0: random biases only), to measure expert load balancing" },
    quiet: { type: "boolean", default: false, help: "print nothing but errors" },
  },
} as const satisfies CommandSpec;

function parseIntArg(name: string, v: string | undefined, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer in [${min}, ${max}], got ${v}`);
  return n;
}

export async function makeModelCommand(argv: string[]): Promise<void> {
  const values = parseSpec(argv, MAKE_MODEL);
  if (!values.preset || !isPresetName(values.preset)) throw new UsageError(`unknown or missing --preset ${values.preset ?? ""}`.trim());
  if (!values.out) throw new UsageError("missing --out DIR");
  if (values.format !== "fp8" && values.format !== "bf16") throw new UsageError(`--format must be fp8 or bf16, got ${values.format}`);
  const format: WeightFormat = values.format;
  const seed = parseIntArg("seed", values.seed, 0, 2 ** 32 - 1) ?? 0;
  const layers = parseIntArg("layers", values.layers, 1, 1000);
  const skew = values["router-skew"] === undefined ? 0 : Number(values["router-skew"]);
  if (!/^\d+(\.\d+)?$/.test(values["router-skew"] ?? "0") || !(skew <= 100)) throw new UsageError(`--router-skew must be a number in [0, 100], got ${values["router-skew"]}`);
  const spec = presetSpec(values.preset, { layers });
  const out = resolve(values.out);

  let shown: ReturnType<typeof progress> | undefined;
  const show = (total: number) => (shown ??= progress(`make-model ${values.preset} ${format}`, total, { unit: "bytes", mode: values.quiet ? "off" : undefined }));
  const res = await writeCheckpoint(out, spec, {
    format,
    seed,
    tokenizerFrom: values["tokenizer-from"] && resolve(values["tokenizer-from"]),
    fp8EhProj: values["fp8-eh-proj"],
    routerSkew: skew,
    onBytes: (done, total) => show(total).set(done),
  });
  show(res.totalSize).end(
    `seed ${seed} -> ${out}: ${(res.params / 1e6).toFixed(1)}M params, vocab_size ${res.vocabSize}, ${res.tensors} tensors, ` +
      `${(res.totalSize / 2 ** 20).toFixed(1)} MiB of tensor data in ${res.shards.length} shards`,
  );
}

if (import.meta.main) {
  // Run alone (bun src/commands/make-model.ts ...): the same exits as `moe make-model`.
  makeModelCommand(process.argv.slice(2)).catch((e: Error) => {
    if (e instanceof HelpRequested) return void console.log(e.usage);
    console.error(`make-model: ${e.message}${e instanceof UsageError ? `\n${usage(MAKE_MODEL)}` : ""}`);
    process.exit(e instanceof UsageError ? 2 : 1);
  });
}
