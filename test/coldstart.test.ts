// Cold start at the read rate: an actor's own tensors are read ahead at activation, a few
// reads in flight (Checkpoint.prefetch), and the lazy reads that follow find them in memory.
// bench-coldstart prints the figures the issue names.
import { afterAll, expect, test } from "bun:test";
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openCheckpoint } from "../src/checkpoint/checkpoint.ts";
import { attentionTensors, expertTensors } from "../src/checkpoint/prefetch.ts";

const SRC = new URL("./fixtures/tiny-dsv3", import.meta.url).pathname;
const root = new URL("..", import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), "moe-coldstart-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const quiet = { progress: { mode: "off" as const } };

test("prefetched tensors are the file's bytes, and later reads are served from memory", async () => {
  const dir = join(tmp, "prefetch");
  cpSync(SRC, dir, { recursive: true });
  const ck = openCheckpoint(dir, quiet);
  const want = new Map(ck.names().map((n) => {
    const i = openCheckpoint(SRC, quiet).info(n);
    return [n, openCheckpoint(SRC, quiet).raw(n, [i.dtype], i.shape).bytes.slice()];
  }));
  const total = ck.names().reduce((s, n) => s + ck.info(n).end - ck.info(n).begin, 0);
  expect(await ck.prefetch(() => true, 3)).toBe(total);
  expect(await ck.prefetch(() => true)).toBe(0); // nothing read twice
  // Zero every shard on disk: only what was read ahead can still give the original bytes.
  for (const f of readdirSync(dir).filter((f) => f.endsWith(".safetensors"))) {
    const path = join(dir, f);
    const head = Bun.file(path);
    const bytes = new Uint8Array(await head.arrayBuffer());
    const hdr = 8 + Number(new DataView(bytes.buffer).getBigUint64(0, true));
    bytes.fill(0, hdr);
    writeFileSync(path, bytes);
    expect(statSync(path).size).toBe(bytes.byteLength);
  }
  for (const [n, b] of want) {
    const i = ck.info(n);
    expect(Buffer.compare(ck.raw(n, [i.dtype], i.shape).bytes, b)).toBe(0);
  }
});

test("an actor's predicate reads only its own tensors; attention and experts cover all but the gates", () => {
  const ck = openCheckpoint(SRC, quiet), c = ck.config;
  const mine = expertTensors(c, [1, 3], false);
  const chosen = ck.names().filter(mine);
  expect(chosen.length).toBeGreaterThan(0);
  for (const n of chosen) expect(n).toMatch(/\.mlp\.experts\.(1|3)\./);
  const all = Array.from({ length: c.n_routed_experts }, (_, e) => e);
  const experts = expertTensors(c, all, true), attention = attentionTensors(c, true);
  for (const n of ck.names()) {
    const gate = n.includes(".mlp.gate.");
    expect([n, experts(n) || attention(n)]).toEqual([n, !gate]);
    expect(experts(n) && attention(n)).toBe(false);
  }
  // without MTP, the MTP layers are left to whoever runs them
  const mtpLayer = `model.layers.${c.num_hidden_layers}.`;
  if (c.num_nextn_predict_layers > 0) {
    expect(ck.names().filter((n) => n.startsWith(mtpLayer)).some(attentionTensors(c, false))).toBe(false);
    expect(ck.names().filter((n) => n.startsWith(mtpLayer)).some(expertTensors(c, all, false))).toBe(false);
  }
});

test("bench-coldstart --json prints the cold-start figures", () => {
  const p = Bun.spawnSync([process.execPath, "scripts/bench-coldstart.ts", "--model", SRC, "--scaling", "configs/scaling/split-workers.yaml", "--json"], {
    cwd: root, stdout: "pipe", stderr: "pipe", env: { ...process.env, MOE_PROGRESS: "off" },
  });
  expect(p.exitCode).toBe(0);
  const out = JSON.parse(p.stdout.toString().trim().split("\n").pop()!);
  for (const k of ["cold_start_ttft_ms", "warm_ttft_ms", "weight_bytes_loaded", "load_gbs", "read_gbs"]) {
    expect(typeof out[k]).toBe("number");
    expect(out[k]).toBeGreaterThan(0);
  }
  expect(out.weight_bytes_loaded).toBeGreaterThanOrEqual(out.shard_bytes * 0.5);
}, 120000);

test("bench-coldstart --help lists its flags; an unknown flag exits 2", () => {
  const run = (...args: string[]) => Bun.spawnSync([process.execPath, "scripts/bench-coldstart.ts", ...args], { cwd: root, stdout: "pipe", stderr: "pipe" });
  const help = run("--help");
  expect(help.exitCode).toBe(0);
  for (const f of ["--model", "--scaling", "--prompt", "--json"]) expect(help.stdout.toString() + help.stderr.toString()).toContain(f);
  expect(run("--no-such-flag").exitCode).toBe(2);
}, 60000);
