// DeepSeek-V3 Hugging Face checkpoint -> GGUF for llama.cpp (architecture `deepseek2`), so that
// llama.cpp can run the same weights side by side with moe-actors (scripts/bench-llama.sh).
//   bun scripts/to-gguf.ts --model DIR --out FILE.gguf --type q8_0|bf16|f32 [--mla split|merged]
//        [--pre NAME] [--name NAME]
// --mla merged writes kv_b as one attn_kv_b matrix, the layout llama.cpp read before April 2025
// (e.g. commit c392e50, the reference build; node-llama-cpp 3.6.0 bundles b4753 of Feb 2025).
// FP8 weights are dequantized with their 128x128 block scales, then requantized (Q8_0: the
// closest llama.cpp type to FP8) or rounded (BF16); a BF16 checkpoint to BF16 is copied bit for bit.
// f32 is for checking the conversion: llama.cpp then computes in f32 and matches our logits.
import { basename, resolve } from "node:path";
import { parseArgs } from "node:util";
import { openCheckpoint } from "../src/checkpoint/checkpoint.ts";
import { addTensors, type MlaLayout, type Target, writeMetadata } from "./gguf/deepseek.ts";
import { GgufWriter } from "./gguf/format.ts";
import { writeVocab } from "./gguf/vocab.ts";

function main(): void {
  const { values: a } = parseArgs({
    args: process.argv.slice(2), strict: true,
    options: { model: { type: "string" }, out: { type: "string" }, type: { type: "string" }, pre: { type: "string" }, name: { type: "string" },
      mla: { type: "string", default: "split" } },
  });
  if (!a.model || !a.out) throw new Error("usage: bun scripts/to-gguf.ts --model DIR --out FILE.gguf --type q8_0|bf16|f32");
  const target = (a.type ?? "q8_0") as Target;
  if (!["q8_0", "bf16", "f32"].includes(target)) throw new Error(`--type ${a.type}: expected q8_0, bf16 or f32`);
  const mla = a.mla as MlaLayout;
  if (mla !== "split" && mla !== "merged") throw new Error(`--mla ${a.mla}: expected split or merged`);
  const ck = openCheckpoint(resolve(a.model));
  if (ck.config.num_nextn_predict_layers > 0) console.error(`note: the ${ck.config.num_nextn_predict_layers} MTP layer(s) are not converted`);

  const g = new GgufWriter();
  writeMetadata(g, ck, a.name ?? basename(resolve(a.model)), target, mla);
  writeVocab(g, ck.dir, ck.config.vocab_size, a.pre);
  addTensors(g, ck, target, mla);
  const t0 = performance.now();
  const size = g.write(a.out, (t, i, n) => {
    if (process.stderr.isTTY) process.stderr.write(`\r[${i + 1}/${n}] ${t.name.padEnd(32)}`);
  });
  if (process.stderr.isTTY) process.stderr.write("\n");
  console.error(`wrote ${a.out}: ${(size / 2 ** 20).toFixed(1)} MiB, ${target}, in ${((performance.now() - t0) / 1e3).toFixed(1)} s`);
}

try {
  main();
} catch (e) {
  console.error(`to-gguf: ${(e as Error).message}`);
  process.exit(1);
}
