// `--help` of every command and script lists every flag the code accepts, and a usage error exits
// 2 with the usage on stderr (issue 18). The flags come from the tables the code parses with
// (exported next to each command), so a flag added to a table and not to the usage fails here.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { COMMANDS, USAGE } from "../src/cli.ts";
import { GENERATE } from "../src/commands/generate.ts";
import { LOGITS } from "../src/commands/logits.ts";
import { MAKE_MODEL } from "../src/commands/make-model.ts";
import { PERPLEXITY } from "../src/commands/perplexity.ts";
import { SERVE_OPTIONS } from "../src/commands/serve.ts";
import type { CommandSpec } from "../src/commands/spec.ts";
import { WORKER } from "../src/commands/worker.ts";
import { BENCH } from "../scripts/bench/flags.ts";
import { BENCH_EPLB } from "../scripts/bench-eplb.ts";
import { BENCH_GRAMMAR } from "../scripts/bench-grammar.ts";
import { LOADGEN_OPTIONS, LOADGEN_USAGE } from "../scripts/loadgen.ts";
import { BENCH_GPU } from "../scripts/bench-gpu.ts";
import { BENCH_NATS } from "../scripts/bench-nats.ts";
import { BENCH_RUNTIME } from "../scripts/bench-runtime.ts";
import { BENCH_STEP } from "../scripts/bench-step.ts";
import { CHAOS } from "../scripts/chaos/flags.ts";
import { TO_GGUF } from "../scripts/to-gguf.ts";

const root = new URL("..", import.meta.url).pathname;

function run(args: string[]): { code: number; out: string; err: string } {
  const p = Bun.spawnSync([process.execPath, ...args], { cwd: root, stdout: "pipe", stderr: "pipe", env: { ...process.env, MOE_PROGRESS: "off" } });
  return { code: p.exitCode ?? -1, out: p.stdout.toString(), err: p.stderr.toString() };
}

/** The flags a parseArgs table accepts, as a user types them. */
const flagsOf = (table: object) => Object.keys(table).map((n) => `--${n}`);

function expectListed(text: string, flags: string[], what: string): void {
  for (const f of flags) {
    const listed = new RegExp(`(^|[\\s\\[(|,])${f.replace(/[-]/g, "\\-")}(?![\\w-])`, "m").test(text);
    expect(listed, `${what}: ${f} is accepted but not in its usage`).toBe(true);
  }
}

/** The commands, each with the table it parses argv with. serve's table is bare (its usage is
 * written by hand: SERVE_USAGE); the others are CommandSpecs whose usage is generated. */
const commandTables: Record<string, object> = {
  serve: SERVE_OPTIONS,
  generate: GENERATE.flags,
  logits: LOGITS.flags,
  perplexity: PERPLEXITY.flags,
  "make-model": MAKE_MODEL.flags,
  worker: WORKER.flags,
};

const scripts: [string, CommandSpec][] = [
  ["scripts/bench.ts", BENCH],
  ["scripts/bench-eplb.ts", BENCH_EPLB],
  ["scripts/bench-gpu.ts", BENCH_GPU],
  ["scripts/bench-grammar.ts", BENCH_GRAMMAR],
  ["scripts/bench-nats.ts", BENCH_NATS],
  ["scripts/bench-runtime.ts", BENCH_RUNTIME],
  ["scripts/bench-step.ts", BENCH_STEP],
  ["scripts/chaos.ts", CHAOS],
  ["scripts/to-gguf.ts", TO_GGUF],
];

describe("moe --help", () => {
  test("the table of commands covers every command the CLI dispatches", () => {
    expect(Object.keys(commandTables).sort()).toEqual(Object.keys(COMMANDS).sort());
    const r = run(["src/cli.ts", "--help"]);
    expect(r.code).toBe(0);
    expect(r.out).toBe(`${USAGE}\n`);
    for (const name of Object.keys(COMMANDS)) expect(r.out).toContain(`  ${name} `);
  });

  test("no command and an unknown command are usage errors: exit 2, usage on stderr", () => {
    for (const args of [[], ["frobnicate"]]) {
      const r = run(["src/cli.ts", ...args]);
      expect(r.code).toBe(2);
      expect(r.out).toBe("");
      expect(r.err).toContain("usage: moe <command>");
    }
  });

  for (const [cmd, table] of Object.entries(commandTables)) {
    test(`moe ${cmd} --help lists every flag it accepts and exits 0`, () => {
      for (const h of ["--help", "-h"]) {
        const r = run(["src/cli.ts", cmd, h]);
        expect(r.code, r.err).toBe(0);
        expect(r.out).toContain(`usage: moe ${cmd}`);
        expectListed(r.out, flagsOf(table), `moe ${cmd}`);
      }
    }, 60_000);

    test(`moe ${cmd} with an unknown flag exits 2 with its usage on stderr`, () => {
      const r = run(["src/cli.ts", cmd, "--no-such-flag"]);
      expect(r.code).toBe(2);
      expect(r.out).toBe("");
      expect(r.err).toContain("--no-such-flag");
      expect(r.err).toContain(`usage: moe ${cmd}`);
      expectListed(r.err, flagsOf(table), `moe ${cmd} (usage error)`);
      expect(r.err.match(/make-model: make-model/)).toBeNull(); // the doubled prefix of old
    }, 60_000);
  }

  test("usage errors found after parsing (a missing or bad value) also exit 2 with the usage", () => {
    const cases: [string[], RegExp][] = [
      [["make-model", "--preset", "bench-s"], /missing --out/],
      [["make-model", "--preset", "huge", "--out", "/nonexistent"], /--preset/],
      [["generate", "--max-tokens", "4"], /exactly one of --ids, --prompt, --chat/],
      [["perplexity"], /exactly one of --tokens FILE, --text FILE/],
      [["logits"], /--ids is required/],
      [["worker", "--node", "experts-a"], /worker needs --scaling FILE --node NAME/],
      [["serve", "--port", "http"], /--port/],
    ];
    for (const [args, message] of cases) {
      const r = run(["src/cli.ts", ...args]);
      expect(r.code, `${args.join(" ")}: ${r.err}`).toBe(2);
      expect(r.err).toMatch(message);
      expect(r.err).toContain(`usage: moe ${args[0]}`);
    }
  }, 120_000);
});

describe("scripts --help", () => {
  for (const [path, spec] of scripts) {
    test(`${path} --help lists every flag it accepts and exits 0; a bad flag exits 2`, () => {
      const r = run([path, "--help"]);
      expect(r.code, r.err).toBe(0);
      expect(r.out).toContain(`usage: ${spec.name}`);
      expectListed(r.out, flagsOf(spec.flags), path);
      const bad = run([path, "--no-such-flag"]);
      expect(bad.code).toBe(2);
      expect(bad.out).toBe("");
      expect(bad.err).toContain(`usage: ${spec.name}`);
      expectListed(bad.err, flagsOf(spec.flags), `${path} (usage error)`);
    }, 60_000);
  }

  // loadgen's usage is written by hand (LOADGEN_USAGE), like serve's: its table is checked against it.
  test("scripts/loadgen.ts --help lists every flag it accepts and exits 0; a bad flag exits 2", () => {
    const r = run(["scripts/loadgen.ts", "--help"]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toBe(`${LOADGEN_USAGE}\n`);
    expectListed(r.out, flagsOf(LOADGEN_OPTIONS), "scripts/loadgen.ts");
    const bad = run(["scripts/loadgen.ts", "--no-such-flag"]);
    expect(bad.code).toBe(2);
    expect(bad.out).toBe("");
    expect(bad.err).toContain(LOADGEN_USAGE);
  }, 60_000);

  test("scripts/bench-llama.sh --help lists every flag of its argument loop and exits 0; a bad one exits 2", () => {
    // the flags are the patterns of its `while [ $# -gt 0 ]; do case "$1" in ... esac; done` loop
    const loop = /while \[ \$# -gt 0 \]; do\n([\s\S]*?)\ndone/.exec(readFileSync(`${root}scripts/bench-llama.sh`, "utf8"))![1]!;
    const flags = [...new Set([...loop.matchAll(/(?:^|[\s|])(--[a-z0-9-]+)\)/gm)].map((m) => m[1]!))];
    expect(flags).toContain("--fp8");
    const ok = Bun.spawnSync(["bash", "scripts/bench-llama.sh", "--help"], { cwd: root });
    expect(ok.exitCode).toBe(0);
    expectListed(ok.stdout.toString(), flags.filter((f) => f !== "--help"), "scripts/bench-llama.sh");
    const bad = Bun.spawnSync(["bash", "scripts/bench-llama.sh", "--no-such-flag"], { cwd: root });
    expect(bad.exitCode).toBe(2);
    expect(bad.stdout.toString()).toBe("");
    expectListed(bad.stderr.toString(), flags.filter((f) => f !== "--help"), "scripts/bench-llama.sh (usage error)");
  });

  test("scripts/build-kernels.sh --help exits 0; an argument it does not take exits 2", () => {
    const ok = Bun.spawnSync(["bash", "scripts/build-kernels.sh", "--help"], { cwd: root });
    expect(ok.exitCode).toBe(0);
    expect(ok.stdout.toString()).toContain("scripts/build-kernels.sh");
    const bad = Bun.spawnSync(["bash", "scripts/build-kernels.sh", "--nope"], { cwd: root });
    expect(bad.exitCode).toBe(2);
  });
});
