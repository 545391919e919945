// Every message the model's actors exchange: plain tagged objects (numbers, strings, typed
// arrays), one discriminated union per inbox. They cross workers, processes and hosts as msgpack.
// The step messages (SeqWork in, SeqResult out) are the engine's whole contract with the
// attention side: the engine imports them from here, the model runner implements them.

/** How to choose the next token from one row of logits (the engine owns the seeded generator). */
export interface SampleSpec {
  temperature: number; // 0 = greedy (below MIN_TEMPERATURE too)
  top_p: number;
  top_k: number;
  min_p: number;
  presence_penalty: number;
  frequency_penalty: number;
  repetition_penalty: number;
  u: number; // the uniform draw in [0, 1) for this step
  logprobs: number | null; // null = none, else how many top alternatives
  output: ArrayLike<number>; // tokens generated so far (read by the penalties only; empty without them)
  prompt?: ArrayLike<number>; // with repetition_penalty != 1
  /** Grammar-constrained decoding: the tokens allowed this step (bit t & 31 of word t >> 5; 16 KiB
   * at V = 129280), computed by the engine from the sequence's grammar. Disallowed logits become
   * -Infinity before penalties and sampling, greedy included; logprobs stay those of the raw model
   * distribution. Absent: every token is allowed. */
  mask?: Uint32Array;
}

export interface Sampled {
  token: number;
  logprob?: number;
  top?: { id: number; logprob: number }[];
}

export interface SeqWork {
  seq: string;
  tokens: ArrayLike<number>; // fed this step, at positions start..
  start: number;
  pages: ArrayLike<number>; // the sequence's cache pages (from the engine's block books)
  /** The cache incarnation (SeqResult.cache) that wrote positions 0..start-1. When given and the
   * runner's caches are another incarnation (the actor was restarted, passivated or moved), the
   * sequence is refused (`stale`) instead of continued on a cache that is not there. */
  cache?: string;
  logits?: "last" | "all"; // return raw logits of these rows
  /** Prompt logprobs: row j's log-softmax at targets[j] (the token at position start+j+1), so
   * the caller gets O(rows) numbers instead of O(rows x vocab) logits. */
  targets?: ArrayLike<number>;
  hidden?: boolean; // return the final hidden states (after model.norm) of every row
  sample?: SampleSpec; // sample the next token from the last row
  spec?: SpecWork; // speculative decoding with the MTP module (needs a runner loaded with mtp)
}

/** Speculative decoding for one sequence of a step. The runner feeds `tokens` then `draft`, verifies
 * the draft against the main model (sampling each row; a draft token is accepted when the main
 * model's own draw equals it, which keeps the target distribution exactly), runs the MTP module on
 * every position whose next token is now known (keeping the MTP cache aligned with the main one), and
 * drafts up to k tokens for the next step by chaining the MTP module on its own hidden output. */
export interface SpecWork {
  k: number;
  draft?: number[]; // drafted tokens fed after `tokens` (decode steps)
  next?: number; // the token after this chunk when already known (prefill chunks that do not sample)
  us?: number[]; // extra uniform draws for the rows after the first (sampling)
}

export interface SpecResult {
  emitted: Sampled[]; // accepted draft tokens then the main model's token at the first mismatch
  draft: number[]; // drafts for the next step
}

export interface SeqResult {
  seq: string;
  /** The incarnation of the caches this step wrote into: send it back as SeqWork.cache. */
  cache?: string;
  /** Refused: SeqWork.cache names another incarnation; the sequence must be recomputed. */
  stale?: boolean;
  /** This sequence alone failed (e.g. its sampling parameters); the others of the step are fine. */
  error?: string;
  logits?: Float32Array; // [rows, vocab]
  logprobs?: Float32Array; // [targets.length]
  hidden?: Float32Array; // [n, D]
  sampled?: Sampled;
  spec?: SpecResult;
}

/** What an actor host needs to build the model's actors (the system config, plain data). */
export interface ModelActorsConfig {
  model: string; // checkpoint directory
  pages: number; // KV pages per attention replica
  pageSize: number;
  mtp: boolean;
  kvCacheDtype?: "f32" | "bf16" | "fp8"; // the latent caches' dtype (absent: f32)
  attentionReplicas: number;
  routers: number; // router actors; attention replica i uses router i % routers
  /** expertTable[e] = keys of the expert actors holding routed expert e (first = primary). */
  expertTable: string[][];
  /** The experts each expert actor holds, by key. */
  expertActors: Record<string, number[]>;
  device?: Record<string, string>; // kind -> "cpu" | "cuda:N" | "hip:N"
}

export type AttentionMsg =
  // table: the expert table version (RouterMsg "table") every route of this step uses, so a
  // re-placement never changes the table under a step in flight (absent: the router's newest).
  | { type: "step"; work: SeqWork[]; table?: number }
  // Sequences that ended: their cache pages no longer hold live state (a tell, no reply).
  | { type: "release"; seqs: string[] }
  | { type: "mtp_logits"; tokens: number[]; pages: number[] };
/** A step the attention actor could not finish. Its caches are intact (positions this step wrote
 * are rewritten by a retry), so it answers instead of throwing, which would restart it and lose
 * them. `unavailable`: an actor it asked (router, experts) could not answer. */
export type StepFailure = { failed: string; unavailable: boolean; final?: boolean }; // final: that ask hit its deadline
export type AttentionReply = SeqResult[] | StepFailure | Float32Array | undefined;

/** expertTable[e] = keys of the expert actors holding routed expert e (first = primary). */
export type ExpertTable = string[][];

export type RouterMsg =
  | { type: "route"; layer: number; x: Float32Array; T: number; table?: number }
  // Install a table version (idempotent); the router keeps the newest two, so the steps still on
  // the previous one finish on it. A route naming a version it lacks uses its newest.
  | { type: "table"; version: number; table: ExpertTable }
  | { type: "load" } // tokens per expert per MoE layer since activation
  | { type: "actor_load" }; // rows (token x expert assignments) sent to each expert actor, by key
export type RouterReply = Float32Array | Record<number, number[]> | Record<string, number> | number;

/** Rows sent to one expert actor: row r of x goes to expert[r] (global id) with weight[r].
 * hold: take these experts (weights read on first use); drop: free them; held: which it holds.
 * An expert actor asked to run an expert it does not hold takes it first (after a restart it
 * holds its configured set again while the routers' table may say more). */
export type ExpertMsg =
  | {
    type: "experts";
    layer: number;
    x: Float32Array; // [n, D] the distinct tokens sent here
    token: Int32Array; // per assignment: row of x
    expert: Int32Array;
    weight: Float32Array;
    /** Answer each assignment's row unsummed (a table with copies: an expert may run on a different
     * actor each call); otherwise one summed row per row of x, the cheaper answer. */
    rows?: boolean;
  }
  | { type: "hold"; experts: number[] }
  | { type: "drop"; experts: number[] }
  | { type: "held" };
/** experts with rows: [assignments, D], row r = weight[r] * Expert_{expert[r]}(x[token[r]]), unsummed,
 * so the router adds each token's experts in one fixed order wherever they ran (bit-identical
 * outputs under any placement of copies); without: [n, D], row i = the sum of x's row i's
 * assignments here; hold/drop/held: the experts now held, ascending. */
export type ExpertReply = Float32Array | number[];

export const ATTENTION = "attention";
export const ROUTER = "router";
export const EXPERT = "expert";
