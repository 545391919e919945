// Online EPLB, before and after: on a model whose router is skewed (make-model --router-skew), the
// same decode workload runs on the scaling config's static copies, then online EPLB re-places the
// hot experts from the load the routers saw, and the workload runs again. Prints the max/mean
// token load over expert actors (rows, i.e. token x expert assignments, each actor was sent) and
// the decode throughput of both runs, and checks that the greedy outputs did not change.
//   npx bun scripts/bench-eplb.ts [--model DIR | --preset bench-s --skew 2] [--split 4] [--hot 4] [--json]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isPresetName, presetSpec } from "../src/checkpoint/presets.ts";
import { writeCheckpoint } from "../src/checkpoint/writer.ts";
import { ACTOR_REGISTRY } from "../src/commands/backend.ts";
import { UsageError } from "../src/commands/args.ts";
import { type CommandSpec, parseOrExit } from "../src/commands/spec.ts";
import { loadModelConfig } from "../src/config/model.ts";
import { parseScaling, resolveScaling } from "../src/config/scaling.ts";
import { ActorBackend } from "../src/engine/actor-backend.ts";
import { ModelEngine } from "../src/engine/engine.ts";
import type { SamplingParams } from "../src/engine/types.ts";
import { moeLayers } from "../src/model/moe.ts";

export const BENCH_EPLB = {
  name: "npx bun scripts/bench-eplb.ts",
  summary: "Max/mean token load over expert actors and decode throughput of a split config, before and after online EPLB re-places the hot experts.",
  flags: {
    model: { type: "string", arg: "DIR", help: "a model directory (default: a --preset model written with --router-skew --skew to a temporary directory)" },
    preset: { type: "string", arg: "NAME", default: "bench-s", help: "make-model preset of the skewed model (default bench-s)" },
    skew: { type: "string", arg: "S", default: "2", help: "its --router-skew (default 2)" },
    split: { type: "string", arg: "N", default: "4", help: "expert actors (experts.split, default 4), one worker each" },
    hot: { type: "string", arg: "K", default: "4", help: "experts with a copy (experts.replicate_hot, default 4)" },
    streams: { type: "string", arg: "N", default: "8", help: "concurrent greedy requests (default 8)" },
    tokens: { type: "string", arg: "N", default: "64", help: "tokens each request generates (default 64)" },
    prompt: { type: "string", arg: "N", default: "32", help: "prompt tokens per request (default 32)" },
    inprocess: { type: "boolean", help: "every actor on the calling thread (default: attention and router on worker 0, expert actor i on worker i+1)" },
    json: { type: "boolean", help: "print one JSON object" },
  },
} as const satisfies CommandSpec;

const greedy = (n: number): SamplingParams => ({
  temperature: 0, top_p: 1, top_k: 0, min_p: 0, presence_penalty: 0, frequency_penalty: 0, repetition_penalty: 1,
  seed: null, max_tokens: n, stop_token_ids: [], ignore_eos: true, logprobs: null, prompt_logprobs: false,
});

interface Phase { max_over_mean: number; rows: Record<string, number>; decode_tok_s: number; outputs: number[][] }

async function main(): Promise<void> {
  const int = (v: string | undefined, f: string, min: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new UsageError(`--${f} must be an integer >= ${min}, got ${v}`);
    return n;
  };
  const a = parseOrExit(process.argv.slice(2), BENCH_EPLB, (v) => {
    for (const [f, min] of [["split", 2], ["hot", 1], ["streams", 1], ["tokens", 2], ["prompt", 1]] as const) int(v[f], f, min);
    if (!v.model && !isPresetName(v.preset!)) throw new UsageError(`--preset must be a make-model preset, got ${v.preset}`);
    if (!v.model && !(Number(v.skew) >= 0)) throw new UsageError(`--skew must be a number >= 0, got ${v.skew}`);
  });
  const split = int(a.split, "split", 2), hot = int(a.hot, "hot", 1), streams = int(a.streams, "streams", 1);
  const tokens = int(a.tokens, "tokens", 2), promptLen = int(a.prompt, "prompt", 1), skew = Number(a.skew);
  const tmp = a.model ? null : mkdtempSync(join(tmpdir(), "bench-eplb-"));
  const model = a.model ?? join(tmp!, "skewed");
  if (tmp) await writeCheckpoint(model, presetSpec(a.preset as "bench-s"), { format: "fp8", seed: 0, routerSkew: skew });

  const config = Object.freeze(loadModelConfig(`${model}/config.json`));
  const where = a.inprocess ? "inprocess" : "worker:0";
  const scaling = resolveScaling(parseScaling({
    placement: where, fallback: [where],
    actors: {
      attention: {}, router: {},
      expert: { experts: { split, replicate_hot: hot }, ...(a.inprocess ? {} : { placement: Array.from({ length: split }, (_, i) => `worker:${i + 1}`) }) },
    },
  }), { n_routed_experts: config.n_routed_experts, moe_layers: moeLayers(config) });
  const pageSize = 16, perSeq = Math.ceil((promptLen + tokens + 1) / pageSize);
  const backend = await ActorBackend.start({ model, config, scaling, registry: ACTOR_REGISTRY, pages: perSeq * (streams + 2), pageSize });
  const engine = new ModelEngine(backend);
  const prompts = Array.from({ length: streams }, (_, s) => Array.from({ length: promptLen }, (_, i) => ((i * 7919 + s * 104729) % Math.min(config.vocab_size - 3, 4000)) + 3));

  async function generate(tag: string, ps: number[][], n: number): Promise<{ outputs: number[][]; decodeTokS: number }> {
    const outputs = ps.map(() => [] as number[]);
    let started = 0, t0 = 0;
    await Promise.all(ps.map(async (p, i) => {
      for await (const ev of engine.generate({ id: `${tag}${i}`, prompt_ids: p, params: greedy(n) })) {
        if (ev.type === "token") {
          if (outputs[i]!.push(ev.id) === 1 && ++started === ps.length) t0 = performance.now();
        } else if (ev.type === "done" && ev.finish_reason === "error") throw new Error(ev.error);
      }
    }));
    // decode throughput: tokens after every request's first one, over the time since then
    return { outputs, decodeTokS: (ps.length * (n - 1)) / ((performance.now() - t0) / 1000) };
  }

  async function phase(tag: string): Promise<Phase> {
    await generate(`${tag}-warm`, [prompts[0]!], 4); // weights of newly held experts are read on first use
    const before = await backend.system.ask<Record<string, number>>("router/0", { type: "actor_load" });
    const { outputs, decodeTokS } = await generate(tag, prompts, tokens);
    const now = await backend.system.ask<Record<string, number>>("router/0", { type: "actor_load" });
    const rows = Object.fromEntries(Object.keys(scaling.expertActors).map((k) => [k, (now[k] ?? 0) - (before[k] ?? 0)]));
    const v = Object.values(rows), mean = v.reduce((x, y) => x + y, 0) / v.length;
    return { max_over_mean: Math.max(...v) / mean, rows, decode_tok_s: decodeTokS, outputs };
  }

  const staticCopies = scaling.hotExperts;
  const before = await phase("before");
  const change = await backend.eplb!.rebalance();
  const after = await phase("after");
  await backend.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });

  const same = JSON.stringify(before.outputs) === JSON.stringify(after.outputs);
  const strip = ({ outputs: _, ...p }: Phase) => p;
  const out = {
    model: a.model ?? `${a.preset} --router-skew ${skew}`, split, replicate_hot: hot, streams, tokens, prompt: promptLen,
    placement: a.inprocess ? "inprocess" : `experts on ${split} workers`,
    static_copies: staticCopies, eplb_copies: change?.hot ?? staticCopies,
    before: strip(before), after: strip(after), outputs_identical: same,
  };
  if (a.json) console.log(JSON.stringify(out));
  else {
    console.log(`online EPLB on ${out.model}: ${split} expert actors (${out.placement}), ${hot} copies, ${streams} streams x ${tokens} tokens`);
    console.log(`copies of experts [${out.static_copies}] (static: evenly spaced) -> [${out.eplb_copies}] (from observed load)`);
    for (const [name, p] of [["before", before], ["after", after]] as const)
      console.log(`${name.padEnd(7)} max/mean token load over expert actors ${p.max_over_mean.toFixed(2)}  rows ${JSON.stringify(p.rows)}  decode ${p.decode_tok_s.toFixed(1)} tok/s`);
    console.log(`greedy outputs identical before and after: ${same}`);
  }
  process.exit(same ? 0 : 1);
}

if (import.meta.main) await main();
