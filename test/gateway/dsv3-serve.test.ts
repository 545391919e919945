// `moe serve --reasoning-parser deepseek_r1 --tool-call-parser deepseek_v31` end to end, on a model
// made with `make-model --tokenizer-from` DeepSeek-V3's tokenizer: the flags reach the gateway (a
// reasoning_content field; calls spelled and read V3.1's way, "required" over several tools refused
// as that parser must), through the official client.
import { afterAll, beforeAll, expect, test } from "bun:test";
import Ajv from "ajv";
import { join } from "node:path";
import OpenAI from "openai";
import { makeDsv3Model } from "../tokenizer/dsv3-fixture.ts";

const root = join(import.meta.dir, "../..");
const time = { type: "object", properties: { tz: { enum: ["CET", "UTC"] }, hour: { type: "integer", minimum: 0, maximum: 23 } }, required: ["tz", "hour"], additionalProperties: false };
const tools: OpenAI.ChatCompletionTool[] = [
  { type: "function", function: { name: "get_time", parameters: time } },
  { type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string", maxLength: 8 } } } } },
];
const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: "user", content: "What time is it in Paris?" }];

let model: Awaited<ReturnType<typeof makeDsv3Model>>;
let proc: ReturnType<typeof Bun.spawn> | null = null;
let client: OpenAI;
const log: string[] = [];

/** Reads the child's stderr as it comes, into `log`, until `re` matches. */
async function waitForLine(stream: ReadableStream<Uint8Array>, re: RegExp): Promise<RegExpMatchArray> {
  const reader = stream.getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const r = await reader.read();
    if (r.done) throw new Error(`serve ended before printing ${re}:\n${log.join("")}`);
    const chunk = dec.decode(r.value, { stream: true });
    log.push(chunk);
    buf += chunk;
    const m = buf.match(re);
    if (m) {
      void (async () => { // keep draining stderr so the child never blocks on it
        for (let x = await reader.read(); !x.done; x = await reader.read()) log.push(dec.decode(x.value));
      })();
      return m;
    }
  }
}

beforeAll(async () => {
  model = await makeDsv3Model("dsv3-cli-");
  proc = Bun.spawn([process.execPath, join(root, "src/cli.ts"), "serve", "--model", model.dir, "--port", "0", "--scaling", "direct",
    "--kv-cache-tokens", "4096", "--reasoning-parser", "deepseek_r1", "--tool-call-parser", "deepseek_v31"],
  { cwd: root, stdout: "ignore", stderr: "pipe", env: { ...process.env, MOE_API_KEY: undefined } });
  const [, base] = await waitForLine(proc.stderr as ReadableStream<Uint8Array>, /listening on (http:\/\/[^/\s]+)\/v1/);
  for (let deadline = Date.now() + 90_000; (await fetch(`${base}/health`)).status !== 200;) {
    if (Date.now() > deadline) throw new Error(`never ready:\n${log.join("")}`);
    await Bun.sleep(50);
  }
  client = new OpenAI({ baseURL: `${base}/v1`, apiKey: "none", maxRetries: 0, timeout: 120_000 });
}, 180_000);

afterAll(() => {
  if (proc && proc.exitCode === null) proc.kill("SIGKILL");
  model?.remove();
});

test("a named call under deepseek_v31 validates; required over two tools is refused by that parser", async () => {
  const r = await client.chat.completions.create({
    model: model.dir.split("/").at(-1)!, messages, tools, tool_choice: { type: "function", function: { name: "get_time" } }, temperature: 1, seed: 4, max_tokens: 48,
  });
  expect(r.choices[0]!.finish_reason).toBe("tool_calls");
  const call = r.choices[0]!.message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
  expect(call.function.name).toBe("get_time");
  expect(new Ajv({ strict: false }).validate(time, JSON.parse(call.function.arguments))).toBe(true);
  expect("reasoning_content" in r.choices[0]!.message).toBe(true); // --reasoning-parser reached the gateway
  const err = await client.chat.completions.create({ messages, tools, tool_choice: "required", max_tokens: 8 } as OpenAI.ChatCompletionCreateParamsNonStreaming)
    .then(() => null, (e) => e);
  expect(err).toBeInstanceOf(OpenAI.BadRequestError);
  expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("tool_choice");
}, 120_000);

test("a bad parser name is a usage error before anything loads", () => {
  const r = Bun.spawnSync([process.execPath, join(root, "src/cli.ts"), "serve", "--model", model.dir, "--tool-call-parser", "hermes"], { cwd: root });
  expect(r.exitCode).toBe(2);
  expect(r.stderr.toString()).toContain("--tool-call-parser hermes: one of deepseek_v3, deepseek_v31");
});
