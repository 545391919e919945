// The gateway's Prometheus metrics: what it measures itself (HTTP statuses, tokens, latencies per
// sequence) plus what the engine reports at scrape time (running/waiting, KV cache, preemptions,
// prefix cache, expert load, speculative decoding). Where a metric means what one of vLLM's means it
// has vLLM's name with `moe_` for `vllm:` (vllm:kv_cache_usage_perc -> moe_kv_cache_usage_perc) and,
// like vLLM's, a `model_name` label on every series: a vLLM Grafana dashboard or KEDA trigger needs
// only that prefix changed.
import type { EngineStats, FinishReason } from "../engine/types.ts";
import type { RequestTally } from "./middleware/access-log.ts";
import { Counter, header, Histogram, type Labels, sample } from "./prometheus.ts";

// vLLM's buckets (vllm/v1/metrics/loggers.py), so dashboards' quantiles mean the same, plus finer ones at
// the low end, where small models land
const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560];
const TPOT_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];
const E2E_BUCKETS = [0.01, 0.05, 0.1, 0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680];
// vLLM's build_1_2_5_buckets, up to a context far past any we serve
const TOKEN_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000];

export class GatewayMetrics {
  readonly requests = new Counter("moe_requests_total", "HTTP requests by route and status code.");
  readonly finished = new Counter("moe_request_success_total", "Finished sequences by finish reason.");
  readonly promptTokens = new Counter("moe_prompt_tokens_total", "Prompt tokens of admitted sequences.");
  readonly generationTokens = new Counter("moe_generation_tokens_total", "Tokens generated, as received by the gateway.");
  readonly ttft = new Histogram("moe_time_to_first_token_seconds", "Time from request arrival to first generated token.", TTFT_BUCKETS);
  readonly tpot = new Histogram("moe_time_per_output_token_seconds", "Mean time per output token after the first, per sequence.", TPOT_BUCKETS);
  readonly itl = new Histogram("moe_inter_token_latency_seconds", "Time between consecutive generated tokens.", TPOT_BUCKETS);
  readonly e2e = new Histogram("moe_e2e_request_latency_seconds", "Time from request arrival to its last byte.", E2E_BUCKETS);
  readonly requestPromptTokens = new Histogram("moe_request_prompt_tokens", "Prompt tokens per finished sequence.", TOKEN_BUCKETS);
  readonly requestGenerationTokens = new Histogram("moe_request_generation_tokens", "Generated tokens per finished sequence.", TOKEN_BUCKETS);

  /** Starts timing one sequence (one choice); `startMs` is the request's arrival. A `tally` adds it
   * up for the request's log line; `countsPrompt`: the first of a prompt's n choices brings the
   * prompt's tokens to it (the others share them, as in the usage). */
  sequence(startMs: number, tally?: RequestTally, countsPrompt = true): SequenceTimer {
    return new SequenceTimer(this, startMs, tally, countsPrompt);
  }

  /** The exposition, every series labelled with `model_name`. */
  render(stats: EngineStats | null, modelName: string): string {
    const base = { model_name: modelName };
    let out = [this.requests, this.finished, this.promptTokens, this.generationTokens].map((c) => c.render(base)).join("");
    out += [this.ttft, this.tpot, this.itl, this.e2e, this.requestPromptTokens, this.requestGenerationTokens]
      .map((h) => h.render(base)).join("");
    return stats ? out + renderEngine(stats, base) : out;
  }
}

export class SequenceTimer {
  private first = 0;
  private last = 0;
  private tokens = 0;
  private prompt = 0;
  private done = false;

  constructor(private readonly m: GatewayMetrics, private readonly startMs: number,
              private readonly tally?: RequestTally, private readonly countsPrompt = true) {}

  admitted(promptTokens: number): void {
    this.prompt = promptTokens;
    this.m.promptTokens.inc(undefined, promptTokens);
    if (this.countsPrompt) this.tally?.prompt(promptTokens);
  }

  token(now = performance.now()): void {
    if (this.tokens === 0) {
      this.first = now;
      this.m.ttft.observe((now - this.startMs) / 1000);
    } else {
      this.m.itl.observe((now - this.last) / 1000);
    }
    this.last = now;
    this.tokens += 1;
    this.m.generationTokens.inc();
    this.tally?.token(now);
  }

  finish(reason: FinishReason): void {
    if (this.done) return;
    this.done = true;
    this.m.finished.inc({ finished_reason: reason });
    this.tally?.finished(reason);
    if (this.tokens > 1) this.m.tpot.observe((this.last - this.first) / 1000 / (this.tokens - 1));
    if (this.prompt > 0) this.m.requestPromptTokens.observe(this.prompt);
    this.m.requestGenerationTokens.observe(this.tokens);
  }
}

function gauge(name: string, help: string, value: number, base: Labels): string {
  return header(name, help, "gauge") + sample(name, value, base);
}

function counter(name: string, help: string, value: number, base: Labels): string {
  return header(name, help, "counter") + sample(name, value, base);
}

function renderEngine(s: EngineStats, base: Labels): string {
  const usage = s.kv_blocks_total > 0 ? s.kv_blocks_used / s.kv_blocks_total : 0;
  let out = gauge("moe_num_requests_running", "Sequences in the running batch.", s.running, base);
  out += gauge("moe_num_requests_waiting", "Sequences waiting to be scheduled.", s.waiting, base);
  out += gauge("moe_kv_cache_usage_perc", "KV-cache usage: the fraction of KV cache blocks in use (1 means 100 percent).", usage, base);
  out += gauge("moe_kv_cache_blocks_used", "KV cache blocks in use.", s.kv_blocks_used, base);
  out += gauge("moe_kv_cache_blocks_total", "KV cache blocks in the budget.", s.kv_blocks_total, base);
  out += counter("moe_num_preemptions_total", "Sequences preempted (sent back to the queue, their cache recomputed later) because KV cache blocks ran short.",
    s.preemptions_total ?? 0, base);
  if (s.prefix_cache_queries_total !== undefined) {
    out += counter("moe_prefix_cache_queries_total", "Prefix cache queries, in prompt tokens looked up.", s.prefix_cache_queries_total, base);
    out += counter("moe_prefix_cache_hits_total", "Prefix cache hits, in prompt tokens found cached.", s.prefix_cache_hits_total ?? 0, base);
  }
  out += counter("moe_engine_prompt_tokens_total", "Prompt tokens prefilled by the engine (recomputed ones included).", s.prompt_tokens_total, base);
  out += counter("moe_engine_generation_tokens_total", "Tokens generated by the engine.", s.generation_tokens_total, base);
  out += header("moe_expert_tokens_total", "Tokens routed to each expert, per MoE layer.", "counter");
  for (const [layer, load] of Object.entries(s.expert_load)) {
    load.forEach((n, expert) => (out += sample("moe_expert_tokens_total", n, { ...base, layer, expert })));
  }
  // What an orchestrator (KEDA) scales on: hosts serving each autoscaled kind, and its demand.
  if (s.actor_replicas) {
    out += header("moe_actor_replicas", "Hosts serving an autoscaled actor kind (0: its actors run at their base location).", "gauge");
    for (const [kind, n] of Object.entries(s.actor_replicas)) out += sample("moe_actor_replicas", n, { ...base, kind });
  }
  if (s.actor_backlog) {
    out += header("moe_actor_backlog", "Demand on an autoscaled actor kind: the engine's running + waiting sequences, or asks in flight to it.", "gauge");
    for (const [kind, n] of Object.entries(s.actor_backlog)) out += sample("moe_actor_backlog", n, { ...base, kind });
  }
  if (s.spec_drafted_total !== undefined || s.spec_accepted_total !== undefined) {
    const drafted = s.spec_drafted_total ?? 0;
    const accepted = s.spec_accepted_total ?? 0;
    out += counter("moe_spec_decode_num_draft_tokens_total", "Draft tokens proposed by speculative decoding.", drafted, base);
    out += counter("moe_spec_decode_num_accepted_tokens_total", "Draft tokens accepted.", accepted, base);
    out += gauge("moe_spec_decode_acceptance_rate", "Accepted / drafted tokens.", drafted > 0 ? accepted / drafted : 0, base);
  }
  return out;
}
