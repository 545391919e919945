// Every message the model's actors exchange: plain tagged objects (numbers, strings, typed
// arrays), one discriminated union per inbox. They cross workers, processes and hosts as msgpack.
import type { SeqResult, SeqWork } from "./model/runner.ts";

export type { SeqResult, SeqWork };

/** What an actor host needs to build the model's actors (the system config, plain data). */
export interface ModelActorsConfig {
  model: string; // checkpoint directory
  pages: number; // KV pages per attention replica
  pageSize: number;
  mtp: boolean;
  attentionReplicas: number;
  routers: number; // router actors; attention replica i uses router i % routers
  /** expertTable[e] = keys of the expert actors holding routed expert e (first = primary). */
  expertTable: string[][];
  /** The experts each expert actor holds, by key. */
  expertActors: Record<string, number[]>;
  device?: Record<string, string>; // kind -> "cpu" | "cuda:N" | "hip:N"
}

export type AttentionMsg =
  | { type: "step"; work: SeqWork[] }
  | { type: "mtp_logits"; tokens: number[]; pages: number[] };
export type AttentionReply = SeqResult[] | Float32Array;

export type RouterMsg =
  | { type: "route"; layer: number; x: Float32Array; T: number }
  | { type: "load" };
export type RouterReply = Float32Array | Record<number, number[]>;

/** Rows sent to one expert actor: row r of x goes to expert[r] (global id) with weight[r]. */
export type ExpertMsg = {
  type: "experts";
  layer: number;
  x: Float32Array; // [n, D] the distinct tokens sent here
  token: Int32Array; // per assignment: row of x
  expert: Int32Array;
  weight: Float32Array;
};
export type ExpertReply = Float32Array; // [n, D] weighted sum of this actor's experts per row

export const ATTENTION = "attention";
export const ROUTER = "router";
export const EXPERT = "expert";
