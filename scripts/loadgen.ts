#!/usr/bin/env bun
// Load generator for any OpenAI-compatible server (ours, vLLM, SGLang), streaming always, that takes
// vLLM's benchmark_serving flags and dataset names and prints its table and JSON fields. Input
// lengths are tokens of the model's tokenizer (--tokenizer DIR; default --model-dir, else the bundled
// model). The modules under scripts/loadgen/ make the prompts, send them, sum up and plot.
import { parseArgs } from "node:util";
import { join } from "node:path";
import { loadTokenizer } from "../src/tokenizer/index.ts";
import { type BenchRequest, fileRequests, mulberry32, randomRequests, sharegptRequests } from "./loadgen/datasets.ts";
import { latencySvg, writePlot } from "./loadgen/plot.ts";
import { formatTable, METRICS, type Metric, percentile } from "./loadgen/report.ts";
import { type RunOptions, runRequests } from "./loadgen/run.ts";

export { formatTable, percentile };

const BUNDLED_MODEL = new URL("../models/fortune-dsv3", import.meta.url).pathname;

export const LOADGEN_USAGE = `usage: bun scripts/loadgen.ts --model NAME [options]   (vLLM benchmark_serving's flags)
server:   [--backend openai|vllm|openai-chat (openai)] [--base-url URL | --host H (127.0.0.1) --port P (8000)]
          [--endpoint /v1/completions|/v1/chat/completions|completions|chat] [--api-key K (or OPENAI_API_KEY)]
          [--request-timeout S (600)]
dataset:  [--dataset-name random|sharegpt|custom (random; sharegpt with --dataset-path)] [--dataset-path FILE]
          [--num-prompts N (100)] [--seed N (0)] [--tokenizer DIR] [--model-dir DIR]
          random:   [--random-input-len N (128)] [--random-output-len N (128)] [--random-range-ratio R (0)]
                    [--shared-prefix-len N | --random-prefix-len N (0)]  (aliases: --input-len --output-len --range-ratio)
          sharegpt: [--sharegpt-output-len N]   custom: [--prompts-file FILE] (.jsonl {"prompt","output_len"} or a prompt a line)
load:     [--request-rate R|inf (inf)] [--burstiness B (1)] [--max-concurrency N | --concurrency N] [--max-seconds S]
          [--ignore-eos]
results:  [--percentile-metrics ttft,tpot,itl,e2el] [--metric-percentiles 50,90,99 | --percentiles ...]
          [--goodput ttft:MS tpot:MS e2el:MS] [--json] [--save-result [FILE]] [--result-dir DIR] [--result-filename F]
          [--plot FILE.svg|FILE.png] [--disable-tqdm (accepted; no bar is drawn)] [-h|--help]`;

/** Every flag loadgen accepts (the help test checks LOADGEN_USAGE names each one). */
export const LOADGEN_OPTIONS = {
  backend: { type: "string" }, "base-url": { type: "string" }, host: { type: "string" }, port: { type: "string" },
  endpoint: { type: "string" }, model: { type: "string" }, "model-dir": { type: "string" }, tokenizer: { type: "string" },
  "api-key": { type: "string" }, "request-timeout": { type: "string" },
  "dataset-name": { type: "string" }, "dataset-path": { type: "string" }, "prompts-file": { type: "string" },
  "num-prompts": { type: "string" }, seed: { type: "string" },
  "random-input-len": { type: "string" }, "input-len": { type: "string" }, "random-output-len": { type: "string" },
  "output-len": { type: "string" }, "random-range-ratio": { type: "string" }, "range-ratio": { type: "string" },
  "shared-prefix-len": { type: "string" }, "random-prefix-len": { type: "string" }, "sharegpt-output-len": { type: "string" },
  "request-rate": { type: "string" }, burstiness: { type: "string" }, "max-concurrency": { type: "string" },
  concurrency: { type: "string" }, "max-seconds": { type: "string" }, "ignore-eos": { type: "boolean" },
  "percentile-metrics": { type: "string" }, "metric-percentiles": { type: "string" }, percentiles: { type: "string" },
  goodput: { type: "string", multiple: true }, json: { type: "boolean" }, "save-result": { type: "string" },
  "result-dir": { type: "string" }, "result-filename": { type: "string" }, plot: { type: "string" },
  "disable-tqdm": { type: "boolean" }, help: { type: "boolean", short: "h" },
} as const;

export class UsageError extends Error {}

export interface LoadgenArgs extends RunOptions {
  dataset: "random" | "sharegpt" | "custom";
  datasetPath: string | null;
  tokenizer: string;
  inputLen: number;
  outputLen: number;
  rangeRatio: number;
  prefixLen: number;
  sharegptOutputLen: number | null;
  seed: number;
  json: boolean;
  saveResult: string | null; // the file, resolved from --save-result/--result-dir/--result-filename
  plot: string | null;
  help: boolean;
}

export function parseCli(argv: string[]): LoadgenArgs {
  // vLLM's --save-result is a bare switch (the name from --result-filename); ours may name the file
  argv = argv.map((x, i) => (x === "--save-result" && (i + 1 === argv.length || argv[i + 1]!.startsWith("-")) ? "--save-result=" : x));
  let parsed;
  try {
    // allowPositionals: `--goodput ttft:50 tpot:10` (vLLM's nargs="+") leaves tpot:10 as a positional
    parsed = parseArgs({ args: argv, strict: true, allowPositionals: true, options: LOADGEN_OPTIONS });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { values: v, positionals } = parsed;
  const num = (name: string, s: string | undefined, dflt: number, min: number): number => {
    if (s === undefined) return dflt;
    const x = s === "inf" ? Infinity : Number(s);
    if (!(x >= min)) throw new UsageError(`--${name} must be a number >= ${min}, got ${s}`);
    return x;
  };
  const int = (name: string, s: string | undefined, dflt: number, min: number) => {
    const x = num(name, s, dflt, min);
    if (!Number.isInteger(x)) throw new UsageError(`--${name} must be an integer, got ${s}`);
    return x;
  };
  const help = v.help ?? false;
  if (!v.model && !help) throw new UsageError("--model is required (the served model's name)");
  const backend = v.backend ?? "openai";
  if (!["openai", "vllm", "openai-chat"].includes(backend)) throw new UsageError(`--backend ${backend}: this tool speaks openai, vllm (the same) or openai-chat`);
  const ep = v.endpoint ?? (backend === "openai-chat" ? "/v1/chat/completions" : "/v1/completions");
  const path = ep === "chat" ? "/v1/chat/completions" : ep === "completions" ? "/v1/completions" : ep;
  if (path !== "/v1/completions" && path !== "/v1/chat/completions") throw new UsageError(`--endpoint ${ep}: /v1/completions or /v1/chat/completions`);
  const dataset = v["dataset-name"] ?? (v["prompts-file"] ? "custom" : v["dataset-path"] ? "sharegpt" : "random");
  if (dataset !== "random" && dataset !== "sharegpt" && dataset !== "custom") throw new UsageError(`--dataset-name ${dataset}: random, sharegpt or custom`);
  const datasetPath = dataset === "custom" ? v["prompts-file"] ?? v["dataset-path"] ?? null : v["dataset-path"] ?? null;
  if (dataset !== "random" && !datasetPath) throw new UsageError(`--dataset-name ${dataset} needs --dataset-path FILE`);
  const goodput: Record<string, number> = {};
  const bad = positionals.find((p) => !/^[a-z0-9]+:/.test(p));
  if (bad !== undefined) throw new UsageError(`unexpected argument: ${bad}`);
  for (const g of [...(v.goodput ?? []), ...positionals].flatMap((s) => s.split(/\s+/)).filter(Boolean)) {
    const [k, ms] = g.split(":");
    if (!["ttft", "tpot", "e2el"].includes(k!)) throw new UsageError(`--goodput takes ttft:MS tpot:MS e2el:MS, got ${g}`);
    goodput[k!] = num("goodput", ms, 0, 0);
  }
  const metrics = (v["percentile-metrics"] ?? METRICS.join(",")).split(",").map((m) => m.trim()) as Metric[];
  const unknown = metrics.find((m) => !METRICS.includes(m));
  if (unknown) throw new UsageError(`--percentile-metrics: ${unknown} is not one of ${METRICS.join(", ")}`);
  const plot = v.plot ?? null;
  if (plot && !/\.(svg|png)$/i.test(plot)) throw new UsageError(`--plot ${plot}: the file must end in .svg or .png`);
  const conc = v["max-concurrency"] ?? v.concurrency;
  const rate = num("request-rate", v["request-rate"], Infinity, 0);
  let saveResult = v["save-result"] ?? null;
  if (saveResult === "" || (saveResult === null && v["result-filename"])) {
    const stamp = new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
    saveResult = v["result-filename"] ?? `${backend}-${rate === Infinity ? "inf" : rate}qps${conc ? `-concurrency${conc}` : ""}-${v.model}-${stamp}.json`;
  }
  if (saveResult !== null && v["result-dir"]) saveResult = join(v["result-dir"], saveResult);
  return {
    help, backend, path, chat: path.endsWith("/chat/completions"), model: v.model ?? "",
    baseUrl: (v["base-url"] ?? `http://${v.host ?? "127.0.0.1"}:${int("port", v.port, 8000, 0)}`).replace(/\/+$/, "").replace(/\/v1$/, ""),
    apiKey: v["api-key"] ?? process.env.OPENAI_API_KEY ?? null, requestTimeoutS: num("request-timeout", v["request-timeout"], 600, 1),
    dataset, datasetPath, tokenizer: v.tokenizer ?? v["model-dir"] ?? BUNDLED_MODEL,
    numPrompts: int("num-prompts", v["num-prompts"], 100, 1), seed: int("seed", v.seed, 0, 0),
    inputLen: int("random-input-len", v["random-input-len"] ?? v["input-len"], 128, 1),
    outputLen: int("random-output-len", v["random-output-len"] ?? v["output-len"], 128, 1),
    rangeRatio: num("random-range-ratio", v["random-range-ratio"] ?? v["range-ratio"], 0, 0),
    prefixLen: int("shared-prefix-len", v["shared-prefix-len"] ?? v["random-prefix-len"], 0, 0),
    sharegptOutputLen: v["sharegpt-output-len"] ? int("sharegpt-output-len", v["sharegpt-output-len"], 0, 1) : null,
    requestRate: rate, burstiness: num("burstiness", v.burstiness, 1, 1e-6),
    concurrency: conc ? int("max-concurrency", conc, 0, 1) : null,
    maxSeconds: v["max-seconds"] ? num("max-seconds", v["max-seconds"], 0, 0) : null, ignoreEos: v["ignore-eos"] ?? false,
    goodput, metrics, percentiles: (v["metric-percentiles"] ?? v.percentiles ?? "50,90,99").split(",").map((p) => num("metric-percentiles", p, 0, 0)),
    json: v.json ?? false, saveResult, plot,
  };
}

/** The dataset's requests, lengths counted by the tokenizer. */
export async function loadRequests(a: LoadgenArgs): Promise<BenchRequest[]> {
  const tok = await loadTokenizer(a.tokenizer);
  const rand = mulberry32(a.seed);
  if (a.dataset === "sharegpt") return sharegptRequests(tok, a.datasetPath!, a.numPrompts, a.sharegptOutputLen, rand);
  if (a.dataset === "custom") return fileRequests(tok, a.datasetPath!, a.numPrompts, a.outputLen);
  return randomRequests(tok, { numPrompts: a.numPrompts, inputLen: a.inputLen, outputLen: a.outputLen, rangeRatio: a.rangeRatio, prefixLen: a.prefixLen }, rand);
}

/** The run's figures (vLLM's field names); with --plot, the latency histograms too. */
export async function runBenchmark(a: LoadgenArgs): Promise<Record<string, unknown>> {
  const reqs = await loadRequests(a);
  const { result, outcomes } = await runRequests(a, reqs, mulberry32(a.seed + 1));
  Object.assign(result, { dataset_name: a.dataset, shared_prefix_len: a.prefixLen });
  if (a.plot) {
    const ok = outcomes.filter((o) => o.ok);
    const svg = latencySvg(`${a.model}: ${ok.length} requests, ${a.dataset} dataset, rate ${result.request_rate}`, [
      { title: "TTFT", values: ok.map((o) => o.ttft) },
      { title: "TPOT", values: ok.filter((o) => o.outputTokens > 1).map((o) => (o.e2el - o.ttft) / (o.outputTokens - 1)) },
      { title: "ITL", values: ok.flatMap((o) => o.itl) },
      { title: "E2EL", values: ok.map((o) => o.e2el) },
    ]);
    result.warnings = await writePlot(a.plot, svg);
  }
  return result;
}

if (import.meta.main) {
  let args: LoadgenArgs;
  try {
    args = parseCli(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`loadgen: ${(err as Error).message}\n${LOADGEN_USAGE}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  }
  if (args.help) {
    process.stdout.write(LOADGEN_USAGE + "\n");
    process.exit(0);
  }
  try {
    const result = await runBenchmark(args);
    const table = formatTable(result, args.percentiles, args.metrics);
    if (args.json) { process.stderr.write(table); process.stdout.write(JSON.stringify(result, null, 2) + "\n"); }
    else process.stdout.write(table);
    if (args.saveResult) await Bun.write(args.saveResult, JSON.stringify(result, null, 2) + "\n");
    for (const w of (result.warnings as string[] | undefined) ?? []) console.error(`warning: ${w}`);
    for (const e of result.errors as string[]) console.error(`error: ${e}`);
  } catch (err) {
    console.error(`loadgen: ${(err as Error).message}`);
    process.exit(1);
  }
}
