#!/usr/bin/env bun
// moe: the command line. Composes configs -> runtime + actor registry -> engine -> gateway.
import { UsageError } from "./commands/args.ts";

const USAGE = `usage: moe <command> [options]
  serve       --model DIR --scaling FILE --host H --port P [--served-model-name NAME] [--api-key K1,K2]
              [--metrics-public] [--request-timeout S] [--drain-timeout S] (moe serve --help: every flag)
  generate    --model DIR (--ids 1,2,3 | --prompt TEXT | --chat TEXT) --max-tokens N [--temperature T --top-p P --top-k K --seed S] [--json]
  logits      --model DIR --ids 3,14,15 [--decode 9,2,6] [--mtp]
  perplexity  --model DIR --tokens FILE [--windows N] [--json]
  make-model  --preset bench-m --format fp8|bf16 --out DIR [--seed S]
  worker      --model DIR --scaling FILE --node NAME [--nats URL] [--nats-creds FILE]
Every model command takes --scaling FILE (configs/scaling/*.yaml; "direct" runs without actors).`;

const commands: Record<string, () => Promise<(argv: string[]) => Promise<void>>> = {
  logits: async () => (await import("./commands/logits.ts")).logitsCommand,
  generate: async () => (await import("./commands/generate.ts")).generateCommand,
  perplexity: async () => (await import("./commands/perplexity.ts")).perplexityCommand,
  "make-model": async () => (await import("./commands/make-model.ts")).makeModelCommand,
  serve: async () => (await import("./commands/serve.ts")).serveCommand,
  worker: async () => (await import("./commands/worker.ts")).workerCommand,
};

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === "--help" || cmd === "-h" || cmd === "help") {
    console.log(USAGE);
    return cmd ? 0 : 2;
  }
  const load = commands[cmd];
  if (!load) {
    console.error(`moe: unknown command '${cmd}'\n${USAGE}`);
    return 2;
  }
  try {
    await (await load())(rest);
    return 0;
  } catch (e) {
    const err = e as Error;
    console.error(`moe ${cmd}: ${err instanceof UsageError ? err.message : err.message}`);
    if (process.env.MOE_DEBUG) console.error(err.stack);
    return err instanceof UsageError ? 2 : 1;
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

const code = await main(process.argv.slice(2));
await Promise.all([drained(process.stdout), drained(process.stderr)]);
// Exit explicitly: a worker thread or socket a command left behind must not keep the CLI alive.
process.exit(code);
