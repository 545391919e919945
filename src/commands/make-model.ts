// `make-model`: writes a random-weight DeepSeek-V3-format checkpoint from a preset shape.
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { isPresetName, presetSpec, PRESETS } from "../checkpoint/presets.ts";
import { writeCheckpoint, type WeightFormat } from "../checkpoint/writer.ts";

const USAGE = `usage: make-model --preset ${Object.keys(PRESETS).join("|")} --out DIR
  [--format fp8|bf16] (default fp8)   [--seed S] (default 0)   [--layers N]
  [--tokenizer-from DIR] (default models/fortune-dsv3)   [--fp8-eh-proj]   [--quiet]`;

function fail(message: string): never {
  throw new Error(`make-model: ${message}\n${USAGE}`);
}

function parseIntArg(name: string, v: string | undefined, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < min || n > max) fail(`--${name} must be an integer in [${min}, ${max}], got ${v}`);
  return n;
}

export async function makeModelCommand(argv: string[]): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        preset: { type: "string" },
        format: { type: "string", default: "fp8" },
        out: { type: "string" },
        seed: { type: "string" },
        layers: { type: "string" },
        "tokenizer-from": { type: "string" },
        "fp8-eh-proj": { type: "boolean", default: false },
        quiet: { type: "boolean", default: false },
        help: { type: "boolean", default: false },
      },
    }));
  } catch (e) {
    fail((e as Error).message);
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (!values.preset || !isPresetName(values.preset)) fail(`unknown or missing --preset ${values.preset ?? ""}`.trim());
  if (!values.out) fail("missing --out DIR");
  if (values.format !== "fp8" && values.format !== "bf16") fail(`--format must be fp8 or bf16, got ${values.format}`);
  const format: WeightFormat = values.format;
  const seed = parseIntArg("seed", values.seed, 0, 2 ** 32 - 1) ?? 0;
  const layers = parseIntArg("layers", values.layers, 1, 1000);
  const spec = presetSpec(values.preset, { layers });
  const out = resolve(values.out);
  const log = values.quiet ? () => {} : (s: string) => console.log(s);

  const t0 = performance.now();
  const res = await writeCheckpoint(out, spec, {
    format,
    seed,
    tokenizerFrom: values["tokenizer-from"] && resolve(values["tokenizer-from"]),
    fp8EhProj: values["fp8-eh-proj"],
    onShard: (file, bytes) => log(`  ${file}  ${(bytes / 2 ** 20).toFixed(1)} MiB  (${((performance.now() - t0) / 1000).toFixed(1)} s)`),
  });
  const secs = (performance.now() - t0) / 1000;
  log(
    `make-model: ${values.preset} ${format} seed ${seed} -> ${out}: ${(res.params / 1e6).toFixed(1)}M params, ` +
      `${res.tensors} tensors, ${(res.totalSize / 2 ** 20).toFixed(1)} MiB of tensor data in ${res.shards.length} shards, ${secs.toFixed(1)} s`,
  );
}

if (import.meta.main) {
  makeModelCommand(process.argv.slice(2)).catch((e: Error) => {
    console.error(e.message);
    process.exit(1);
  });
}
