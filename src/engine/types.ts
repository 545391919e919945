// The engine's contract with the gateway: token ids in, token events out.
// The gateway owns text (tokenizer, chat template, stop strings, detokenization); the engine owns
// sequences, the KV cache, batching and sampling. Nothing here knows about HTTP.
import type { Grammar } from "../grammar/index.ts";

export interface SamplingParams {
  temperature: number; // 0 = greedy
  top_p: number; // 1 = off
  top_k: number; // <= 0 = off
  min_p: number; // 0 = off
  presence_penalty: number;
  frequency_penalty: number;
  repetition_penalty: number; // 1 = off
  seed: number | null; // same seed, same output
  max_tokens: number;
  stop_token_ids: number[];
  ignore_eos: boolean;
  logprobs: number | null; // null = none; k >= 0: the sampled token's logprob and the top k
  prompt_logprobs: boolean; // logprob of every prompt token after the first (for echo)
  /** Grammar-constrained decoding (src/grammar): each step samples only tokens the grammar allows
   * (within max_tokens), and the output ends when the grammar is complete. */
  constraint?: Grammar;
}

export interface GenerateRequest {
  id: string;
  prompt_ids: number[];
  params: SamplingParams;
  signal?: AbortSignal; // aborting cancels the sequence and frees its cache
}

export interface TopLogprob {
  id: number;
  logprob: number;
}

export type FinishReason = "stop" | "length" | "abort" | "error";

export type TokenEvent =
  | { type: "prompt"; logprobs: (number | null)[] } // only with prompt_logprobs; first is null
  // cached_tokens: on the first token, the prompt tokens found in the prefix cache (as on "done")
  | { type: "token"; id: number; logprob?: number; top_logprobs?: TopLogprob[]; cached_tokens?: number }
  | {
      type: "done";
      finish_reason: FinishReason;
      prompt_tokens: number;
      completion_tokens: number;
      cached_tokens?: number; // prompt tokens found in the prefix cache (not computed again)
      error?: string;
      /** With finish_reason "error": "unavailable" when no host could run the sequence (the
       * gateway answers 503), "internal" for a failure of this sequence (500). */
      error_code?: EngineError["code"];
    };

export interface EngineStats {
  running: number;
  waiting: number;
  kv_blocks_used: number;
  kv_blocks_total: number;
  prompt_tokens_total: number;
  generation_tokens_total: number;
  // tokens routed to each expert, per MoE layer: expert_load[layer][expert]
  expert_load: Record<number, number[]>;
  // optional speculative decoding counters
  spec_drafted_total?: number;
  spec_accepted_total?: number;
  // sequences sent back to the queue because KV pages ran short (vLLM's num_preemptions)
  preemptions_total?: number;
  // prefix caching, in prompt tokens: looked up, and found cached (vLLM's prefix_cache_queries/hits)
  prefix_cache_queries_total?: number;
  prefix_cache_hits_total?: number;
  // autoscaled actor kinds (the scaling config's autoscale): hosts serving each now, and its backlog
  actor_replicas?: Record<string, number>;
  actor_backlog?: Record<string, number>;
}

/** A sequence the scheduler sent back to the queue for want of KV pages; its cache is recomputed
 * when it runs again. */
export interface Preemption {
  request_id: string; // the engine request's id (the gateway's x-request-id, suffixed)
  replica: number; // the attention replica whose cache was short
  computed_tokens: number; // cache positions dropped, to be recomputed
}

export interface ModelInfo {
  id: string; // the served model name
  max_model_len: number;
  vocab_size: number;
  eos_token_id: number;
  bos_token_id: number;
}

/** Refusals the gateway turns into HTTP answers (e.g. queue full -> 429). */
export class EngineError extends Error {
  constructor(
    message: string,
    readonly code: "queue_full" | "prompt_too_long" | "invalid_request" | "unavailable" | "internal",
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = "EngineError";
  }
}

export interface Engine {
  readonly info: ModelInfo;
  /** Streams the events of one sequence; the last event is always "done".
   * Throws EngineError synchronously-on-first-next when the request is refused. */
  generate(req: GenerateRequest): AsyncIterable<TokenEvent>;
  stats(): EngineStats;
  /** Ready once the model's actors are activated and a first step has run; not ready (with a
   * reason) while any actor kind has no live host, or while shutting down. */
  health(): EngineHealth;
  /** Runs one tiny request through the model so every actor kind activates (serve calls it after
   * listening; /health turns ready when it is done). */
  warmup?(): Promise<void>;
  /** What runs where, for GET /v1/cluster and the dashboard (absent: an engine without actors). */
  cluster?(): ClusterState;
  close(): Promise<void>;
}

/** One actor the model needs, or one that ran: `replicas` counts the hosts where its kind+key is
 * active now (an expert actor with redundant copies has more than one). */
export interface ClusterActor {
  id: string; // "kind/key"
  kind: string;
  key: string;
  location: string; // where its next message goes (its placed host, or a fallback while that is lost)
  state: "active" | "passivated";
  replicas: number;
}

export interface ClusterHost {
  location: string;
  status: string; // the runtime's host status (starting, ready, restarting, stopped, ...)
  lost: boolean;
  actors: string[]; // active there
}

export interface ClusterState {
  hosts: ClusterHost[];
  actors: ClusterActor[];
  expert_load: Record<number, number[]>; // tokens routed, expert_load[layer][expert]
}

export interface EngineHealth {
  ready: boolean;
  reason?: string;
}
