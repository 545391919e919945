// Prefix caching through the real engine: a prompt that starts with cached full pages skips them
// (usage's cached_tokens, the hit counters) and the greedy output is token-for-token the output
// without caching: with a shared long prefix, with a cache small enough to preempt and evict, when
// the cache's incarnation was lost, with prompt logprobs, and under MTP speculative decoding.
import { describe, expect, test } from "bun:test";
import type { ModelBackend, SeqResult, SeqWork } from "../../src/engine/backend.ts";
import { DirectBackend } from "../../src/engine/direct.ts";
import { ModelEngine, type EngineOptions } from "../../src/engine/engine.ts";
import { seededRandom } from "../../src/engine/sequence.ts";
import type { SamplingParams, TokenEvent } from "../../src/engine/types.ts";
import { greedy } from "../golden/suite.ts";

const root = new URL("../..", import.meta.url).pathname;
const TINY = `${root}test/fixtures/tiny-dsv3`, FORTUNE = `${root}models/fortune-dsv3`;
const PS = 16;

interface Out { ids: number[]; cached: number; done: Extract<TokenEvent, { type: "done" }> }

let n = 0;
async function run(e: ModelEngine, prompt: number[], p: SamplingParams): Promise<Out> {
  const ids: number[] = [];
  let done: Out["done"] | undefined;
  for await (const ev of e.generate({ id: `p${n++}`, prompt_ids: prompt, params: p })) {
    if (ev.type === "token") ids.push(ev.id);
    if (ev.type === "done") done = ev;
  }
  if (done?.finish_reason === "error") throw new Error(done.error);
  return { ids, cached: done?.cached_tokens ?? 0, done: done! };
}

/** Prompts that share their first `shared` tokens, then differ. */
function prompts(count: number, shared: number, tail: number, vocab: number, seed = 1): number[][] {
  const r = seededRandom(seed), tok = () => 2 + Math.floor(r() * (vocab - 2));
  const head = [0, ...Array.from({ length: shared - 1 }, tok)];
  return Array.from({ length: count }, () => [...head, ...Array.from({ length: tail }, tok)]);
}

/** Both engines (caching off, then on) on one backend, one after the other: the off engine's pages
 * are rewritten before the caching engine runs, and the caching engine is the last user. */
async function compare(backend: ModelBackend, ps: number[][], p: SamplingParams, o: EngineOptions = {}, concurrent = false) {
  const go = (e: ModelEngine) => concurrent ? Promise.all(ps.map((x) => run(e, x, p)))
    : ps.reduce(async (acc, x) => [...await acc, await run(e, x, p)], Promise.resolve([] as Out[]));
  const off = await go(new ModelEngine(backend, o));
  const engine = new ModelEngine(backend, { ...o, prefixCaching: true });
  const on = await go(engine);
  expect(on.map((x) => x.ids)).toEqual(off.map((x) => x.ids));
  expect(off.every((x) => x.cached === 0)).toBe(true);
  return { on, engine };
}

describe("prefix caching: tiny-dsv3", () => {
  test("a shared 50-token prefix: later prompts reuse 48 tokens (3 full pages), output unchanged", async () => {
    const backend = new DirectBackend(TINY, { pages: 64, pageSize: PS });
    const ps = prompts(4, 50, 7, 512);
    const { on, engine } = await compare(backend, ps, greedy(12));
    expect(on.map((x) => x.cached)).toEqual([0, 48, 48, 48]);
    // the same prompt again: everything but the last token's page (57 tokens -> 3 full pages)
    expect((await run(engine, ps[0], greedy(12))).cached).toBe(48);
    const s = engine.stats();
    expect(s.prefix_cache_queries_total).toBe(5 * 57);
    expect(s.prefix_cache_hits_total).toBe(4 * 48);
    expect(new ModelEngine(backend).stats().prefix_cache_queries_total).toBeUndefined(); // off: not reported
  }, 120_000);

  test("the warm-up request leaves the prefix cache counters at zero", async () => {
    const engine = new ModelEngine(new DirectBackend(TINY, { pages: 64, pageSize: PS }), { prefixCaching: true });
    await engine.warmup();
    expect(engine.stats()).toMatchObject({ prefix_cache_queries_total: 0, prefix_cache_hits_total: 0 });
  }, 60_000);

  test("generated tokens' pages are cached too: a prompt that continues an output reuses them", async () => {
    const backend = new DirectBackend(TINY, { pages: 64, pageSize: PS });
    const engine = new ModelEngine(backend, { prefixCaching: true });
    const [p] = prompts(1, 20, 0, 512, 3);
    const first = await run(engine, p, greedy(30)); // 20 + 30 tokens written: pages 0..1 full (and page 2 with the 49th)
    const follow = [...p, ...first.ids, 5, 6];
    const again = await run(engine, follow, greedy(8));
    expect(again.cached).toBe(48);
    const off = await run(new ModelEngine(backend), follow, greedy(8));
    expect(again.ids).toEqual(off.ids);
  }, 120_000);

  test("a cache too small for the batch: preemption and eviction, concurrent, output unchanged", async () => {
    // 12 pages of 16 for 5 sequences of 40 + 24 tokens (4 pages each): sequences are preempted,
    // recomputed from their own cached pages, and idle pages are evicted for new ones
    const backend = new DirectBackend(TINY, { pages: 12, pageSize: PS });
    const ps = prompts(5, 36, 4, 512, 7);
    const { on, engine } = await compare(backend, ps, greedy(24), { maxBatchTokens: 64 }, true);
    expect(on.some((x) => x.cached > 0)).toBe(true);
    expect(engine.stats().kv_blocks_used).toBe(0); // every page given back (idle cached pages count as free)
  }, 120_000);

  test("a request for prompt logprobs computes every position (no reuse), same logprobs", async () => {
    const backend = new DirectBackend(TINY, { pages: 64, pageSize: PS });
    const [a, b] = prompts(2, 40, 5, 512, 11);
    const lp = { ...greedy(4), prompt_logprobs: true };
    const engine = new ModelEngine(backend, { prefixCaching: true });
    await run(engine, a, greedy(4));
    const prompt = async (e: ModelEngine) => {
      let got: (number | null)[] = [];
      for await (const ev of e.generate({ id: `lp${n++}`, prompt_ids: b, params: lp })) if (ev.type === "prompt") got = ev.logprobs;
      return got;
    };
    const withCache = await prompt(engine);
    expect(withCache).toHaveLength(b.length);
    expect((await run(engine, b, lp)).cached).toBe(0);
    expect((await run(engine, b, greedy(4))).cached).toBe(32); // a plain request does reuse
    expect(withCache).toEqual(await prompt(new ModelEngine(backend)));
  }, 120_000);

  test("pages cached by a lost incarnation (actor restarted) are dropped, not reused: recomputed, output unchanged", async () => {
    const backend = new RestartableBackend(TINY);
    const logs: string[] = [];
    const engine = new ModelEngine(backend, { prefixCaching: true, log: (m) => logs.push(m) });
    const ps = prompts(2, 48, 6, 512, 5);
    await run(engine, ps[0], greedy(6));
    backend.restart(); // a fresh runner: another incarnation, an empty cache
    const got = await run(engine, ps[1], greedy(10));
    expect(logs.some((l) => /lost the cache/.test(l))).toBe(true);
    expect(got.ids).toEqual((await run(new ModelEngine(new RestartableBackend(TINY)), ps[1], greedy(10))).ids);
    // the recomputed pages belong to the new incarnation and are reused from now on
    expect((await run(engine, ps[0], greedy(6))).cached).toBe(48);
  }, 120_000);
});

describe("prefix caching: two attention replicas", () => {
  test("each replica reuses only pages of its own cache (never stale); output unchanged; a restart drops one replica's pages", async () => {
    const backend = new TwoReplicas(TINY);
    const logs: string[] = [];
    const ps = prompts(6, 40, 5, 512, 17);
    const { on, engine } = await compare(backend, ps, greedy(8), { log: (m) => logs.push(m) }, true);
    const again = await Promise.all(ps.map((p) => run(engine, p, greedy(8))));
    expect(again.map((x) => x.ids)).toEqual(on.map((x) => x.ids));
    expect(again.every((x) => x.cached === 32)).toBe(true);
    expect(logs.filter((l) => /lost the cache/.test(l))).toEqual([]);
    expect(new Set(backend.seen.map((w) => w.replica)).size).toBe(2);
    backend.restart(1);
    const after = await Promise.all(ps.map((p) => run(engine, p, greedy(8))));
    expect(after.map((x) => x.ids)).toEqual(on.map((x) => x.ids));
  }, 120_000);
});

describe("prefix caching: fortune-dsv3 with MTP speculative decoding", () => {
  test("shared prefix, a small cache (preemption), k = 2: greedy output unchanged", async () => {
    const backend = new DirectBackend(FORTUNE, { pages: 16, pageSize: PS, mtp: true });
    const ps = prompts(4, 60, 5, 4096, 13);
    const o: EngineOptions = { speculative: { k: 2, always: true }, maxBatchTokens: 96 };
    const { on } = await compare(backend, ps, greedy(40), o);
    expect(on.slice(1).every((x) => x.cached === 48)).toBe(true);
    const conc = await compare(backend, ps, greedy(40), o, true);
    expect(conc.on.map((x) => x.ids)).toEqual(on.map((x) => x.ids));
  }, 240_000);
});

/** The attention side restarted between requests: a new runner (new incarnation, empty cache). */
class RestartableBackend extends DirectBackend {
  private inner: DirectBackend;
  constructor(private readonly model: string) {
    super(model, { pages: 64, pageSize: PS });
    this.inner = new DirectBackend(model, { pages: 64, pageSize: PS });
  }
  restart(): void {
    this.inner = new DirectBackend(this.model, { pages: 64, pageSize: PS });
  }
  override step(replica: number, work: SeqWork[]): Promise<SeqResult[]> {
    return this.inner.step(replica, work);
  }
}

/** Two attention replicas, each its own runner and cache (as two attention actors are). */
class TwoReplicas extends DirectBackend {
  private readonly inner: DirectBackend[];
  readonly seen: { replica: number; start: number }[] = [];
  override readonly replicas = 2;
  constructor(private readonly model: string) {
    super(model, { pages: 64, pageSize: PS });
    this.inner = [0, 1].map(() => new DirectBackend(model, { pages: 64, pageSize: PS }));
  }
  restart(replica: number): void {
    this.inner[replica] = new DirectBackend(this.model, { pages: 64, pageSize: PS });
  }
  override step(replica: number, work: SeqWork[]): Promise<SeqResult[]> {
    for (const w of work) this.seen.push({ replica, start: w.start });
    return this.inner[replica]!.step(replica, work);
  }
  override release(replica: number, seqs: string[]): void {
    this.inner[replica]!.release(replica, seqs);
  }
}
