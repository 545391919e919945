// What the engine needs from the model, wherever it runs: one forward step over sequences.
// The direct backend runs it on the calling thread; the actor backend (actor-backend.ts) sends
// it to attention actors placed by a scaling config.
import type { ModelConfig } from "../config/model.ts";
import type { SeqResult, SeqWork } from "../protocol.ts";
import type { ClusterState, EngineHealth, EngineStats } from "./types.ts";

export type { SeqResult, SeqWork };

export interface ModelBackend {
  readonly config: ModelConfig;
  readonly pageSize: number;
  readonly pages: number; // KV cache pages per attention replica
  readonly replicas: number; // attention replicas (data parallel); sequences pin to one
  readonly batch?: { max_batch_tokens: number; max_running_seqs: number }; // the scaling config's limits
  /** Rejects with BackendUnavailable when no host could run the step; any other rejection is a
   * failure of the step's own work (the engine then looks for the sequence that caused it). */
  step(replica: number, work: SeqWork[]): Promise<SeqResult[]>;
  /** Sequences that left `replica`'s cache: it no longer holds live state for them. */
  release?(replica: number, seqs: string[]): void;
  /** Whether every actor kind has a live host (absent: always). */
  health?(): EngineHealth;
  /** MTP logits for a whole prompt (tests / CLI): row i predicts token i+2. */
  mtpLogits?(tokens: number[], pages: number[]): Promise<Float32Array>;
  expertLoad(): Promise<Record<number, number[]>>;
  /** Hosts and actors now (absent: a backend without actors). */
  cluster?(): Omit<ClusterState, "expert_load">;
  /** Hosts and backlog per autoscaled actor kind (absent: none scales). */
  /** The demand autoscaled actor kinds scale on (the engine's sequences). */
  scaleOn?(demand: () => number): void;
  scalingStats?(): Pick<EngineStats, "actor_replicas" | "actor_backlog"> | undefined;
  close(): Promise<void>;
}

/** A step no host could run (its host died, stopped answering, or none can take the actor).
 * `final`: the ask already waited its whole deadline, so retrying would exceed it. */
export class BackendUnavailable extends Error {
  constructor(message: string, readonly final = false) {
    super(message);
    this.name = "BackendUnavailable";
  }
}
