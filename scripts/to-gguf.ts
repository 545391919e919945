// DeepSeek-V3 Hugging Face checkpoint -> GGUF for llama.cpp (architecture `deepseek2`), so that
// llama.cpp can run the same weights side by side with moe-actors (scripts/bench-llama.sh).
//   npx bun scripts/to-gguf.ts --model DIR --out FILE.gguf --type q8_0|bf16|f32 [--mla split|merged]
//        [--pre NAME] [--name NAME]
// --mla merged writes kv_b as one attn_kv_b matrix, the layout llama.cpp read before April 2025
// (e.g. commit c392e50, the reference build; node-llama-cpp 3.6.0 bundles b4753 of Feb 2025).
// FP8 weights are dequantized with their 128x128 block scales, then requantized (Q8_0: the
// closest llama.cpp type to FP8) or rounded (BF16); a BF16 checkpoint to BF16 is copied bit for bit.
// f32 is for checking the conversion: llama.cpp then computes in f32 and matches our logits.
import { basename, resolve } from "node:path";
import { openCheckpoint } from "../src/checkpoint/checkpoint.ts";
import { type CommandSpec, UsageError, parseOrExit } from "../src/commands/spec.ts";
import { progress } from "../src/progress.ts";
import { addTensors, type MlaLayout, type Target, writeMetadata } from "./gguf/deepseek.ts";
import { GgufWriter } from "./gguf/format.ts";
import { writeVocab } from "./gguf/vocab.ts";

export const TO_GGUF = {
  name: "npx bun scripts/to-gguf.ts",
  summary: "Converts a DeepSeek-V3 Hugging Face checkpoint to GGUF (llama.cpp's deepseek2) for scripts/bench-llama.sh.",
  flags: {
    model: { type: "string", arg: "DIR", help: "the checkpoint directory (required)" },
    out: { type: "string", arg: "FILE.gguf", help: "the GGUF file to write (required)" },
    type: { type: "string", arg: "q8_0|bf16|f32", help: "tensor type: q8_0 (closest to FP8), bf16, or f32 to check a conversion (default q8_0)" },
    mla: { type: "string", arg: "split|merged", default: "split", help: "kv_b as k_b/v_b (split) or one attn_kv_b, as llama.cpp read it before April 2025 (merged)" },
    pre: { type: "string", arg: "NAME", help: "tokenizer.ggml.pre of the vocabulary (default: derived from the tokenizer)" },
    name: { type: "string", arg: "NAME", help: "general.name (default: the model directory's name)" },
  },
} as const satisfies CommandSpec;

function main(): void {
  const a = parseOrExit(process.argv.slice(2), TO_GGUF, (v) => {
    if (!v.model || !v.out) throw new UsageError("--model DIR and --out FILE.gguf are required");
    if (v.type !== undefined && !["q8_0", "bf16", "f32"].includes(v.type)) throw new UsageError(`--type ${v.type}: expected q8_0, bf16 or f32`);
    if (v.mla !== "split" && v.mla !== "merged") throw new UsageError(`--mla ${v.mla}: expected split or merged`);
  });
  const target = (a.type ?? "q8_0") as Target;
  const mla = a.mla as MlaLayout;
  const ck = openCheckpoint(resolve(a.model!));
  if (ck.config.num_nextn_predict_layers > 0) console.error(`note: the ${ck.config.num_nextn_predict_layers} MTP layer(s) are not converted`);

  const g = new GgufWriter();
  writeMetadata(g, ck, a.name ?? basename(resolve(a.model!)), target, mla);
  writeVocab(g, ck.dir, ck.config.vocab_size, a.pre);
  addTensors(g, ck, target, mla);
  let shown: ReturnType<typeof progress> | undefined;
  const size = g.write(a.out!, (_t, i, n) => (shown ??= progress(`to-gguf ${target}`, n, { unit: "count" })).set(i + 1));
  (shown ?? progress(`to-gguf ${target}`, 0)).end(`wrote ${a.out}: ${(size / 2 ** 20).toFixed(1)} MiB`);
}

if (import.meta.main) {
  try {
    main();
  } catch (e) {
    console.error(`to-gguf: ${(e as Error).message}`);
    process.exit(1);
  }
}
