// What the engine needs from the model, wherever it runs: one forward step over sequences.
// The direct backend runs it on the calling thread; the actor backend (actor-backend.ts) sends
// it to attention actors placed by a scaling config.
import type { ModelConfig } from "../config/model.ts";
import type { SeqResult, SeqWork } from "../model/runner.ts";

export type { SeqResult, SeqWork };

export interface ModelBackend {
  readonly config: ModelConfig;
  readonly pageSize: number;
  readonly pages: number; // KV cache pages per attention replica
  readonly replicas: number; // attention replicas (data parallel); sequences pin to one
  readonly batch?: { max_batch_tokens: number; max_running_seqs: number }; // the scaling config's limits
  step(replica: number, work: SeqWork[]): Promise<SeqResult[]>;
  /** MTP logits for a whole prompt (tests / CLI): row i predicts token i+2. */
  mtpLogits?(tokens: number[], pages: number[]): Promise<Float32Array>;
  expertLoad(): Promise<Record<number, number[]>>;
  close(): Promise<void>;
}
