#!/usr/bin/env bun
// moe: the command line. Composes configs -> runtime + actor registry -> engine -> gateway.
// `moe <command> --help` prints a command's every flag; a usage error prints the same text on
// stderr and exits 2, any other failure exits 1.
import { HelpRequested, UsageError, usage } from "./commands/args.ts";

interface Command {
  run: (argv: string[]) => Promise<void>;
  usage: string;
}

/** Loaded on demand: `moe make-model` need not load the gateway. */
export const COMMANDS: Record<string, { summary: string; load: () => Promise<Command> }> = {
  serve: {
    summary: "the OpenAI-compatible server (HTTP, continuous batching, /metrics)",
    load: async () => { const m = await import("./commands/serve.ts"); return { run: m.serveCommand, usage: m.SERVE_USAGE }; },
  },
  generate: {
    summary: "one completion of a prompt, token ids or a chat message",
    load: async () => { const m = await import("./commands/generate.ts"); return { run: m.generateCommand, usage: usage(m.GENERATE) }; },
  },
  logits: {
    summary: "raw logits as JSON (prefill row, then one per decode token)",
    load: async () => { const m = await import("./commands/logits.ts"); return { run: m.logitsCommand, usage: usage(m.LOGITS) }; },
  },
  perplexity: {
    summary: "loss and perplexity over a token stream or a text file",
    load: async () => { const m = await import("./commands/perplexity.ts"); return { run: m.perplexityCommand, usage: usage(m.PERPLEXITY) }; },
  },
  "make-model": {
    summary: "write a random-weight checkpoint in the real HF DeepSeek-V3 format",
    load: async () => { const m = await import("./commands/make-model.ts"); return { run: m.makeModelCommand, usage: usage(m.MAKE_MODEL) }; },
  },
  worker: {
    summary: "serve the actors a scaling config places on one node (over NATS)",
    load: async () => { const m = await import("./commands/worker.ts"); return { run: m.workerCommand, usage: usage(m.WORKER) }; },
  },
};

export const USAGE = [
  "usage: moe <command> [options]      (from the project: npx moe <command>)",
  "",
  "commands:",
  ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(11)} ${c.summary}`),
  "",
  "moe <command> --help lists the command's flags. Every model command takes --model DIR (default",
  "models/fortune-dsv3) and --scaling FILE (configs/scaling/*.yaml; \"direct\" runs without actors).",
].join("\n");

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === "--help" || cmd === "-h" || cmd === "help") {
    console.log(USAGE);
    return 0;
  }
  const entry = cmd === undefined ? undefined : COMMANDS[cmd];
  if (!entry) {
    console.error(`${cmd === undefined ? "moe: no command given" : `moe: unknown command '${cmd}'`}\n${USAGE}`);
    return 2;
  }
  const command = await entry.load();
  try {
    await command.run(rest);
    return 0;
  } catch (e) {
    if (e instanceof HelpRequested) {
      console.log(e.usage);
      return 0;
    }
    const err = e as Error;
    if (err instanceof UsageError) {
      console.error(`moe ${cmd}: ${err.message}\n${err.usage ?? command.usage}`);
      return 2;
    }
    console.error(`moe ${cmd}: ${err.message}`);
    if (process.env.MOE_DEBUG) console.error(err.stack);
    return 1;
  }
}

/**
 * Ends `stream` and resolves once everything written to it has reached the OS. A pipe to a slow
 * reader holds 64 KiB; the rest waits in the process, and process.exit would drop it. (In Bun
 * 1.4.5 an empty write's callback runs at once and writableLength stays 0, so end() is the
 * one signal that the queue is flushed.)
 */
function drained(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || stream.writableEnded) return resolve();
    stream.once("error", () => resolve()); // a reader that went away (EPIPE) takes no more output
    stream.once("close", () => resolve());
    stream.end(() => resolve());
  });
}

if (import.meta.main) {
  const code = await main(process.argv.slice(2));
  await Promise.all([drained(process.stdout), drained(process.stderr)]);
  // Exit explicitly: a worker thread or socket a command left behind must not keep the CLI alive.
  process.exit(code);
}
