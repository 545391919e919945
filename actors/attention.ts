// The attention actor: for the sequences of its data-parallel shard it owns the embedding, every
// layer's norms and MLA weights, the paged latent KV cache, the dense layers, the shared experts,
// the final norm and head (and the MTP layer when asked for). Routed experts are one ask away.
// Its KV cache is live state while any of its sequences is unfinished: the runtime must not
// passivate it then (holdsState), and the engine says when sequences end (release).
import { ActorError, defineActor } from "../src/runtime/actor.ts";
import { openCheckpoint } from "../src/checkpoint/checkpoint.ts";
import { attentionTensors } from "../src/checkpoint/prefetch.ts";
import { kernelsFor } from "../src/kernels/select.ts";
import type { RoutedFFN } from "../src/model/block.ts";
import { StepRunner } from "../src/model/runner.ts";
import {
  ATTENTION, type AttentionMsg, type AttentionReply, type ModelActorsConfig, ROUTER, type RouterMsg, type StepFailure,
} from "../src/protocol.ts";

interface State {
  runner: StepRunner;
  routed: RoutedFFN;
  table?: number; // the expert table version of the step being run (online EPLB)
}

export const attention = defineActor<State, AttentionMsg, AttentionReply>({
  kind: ATTENTION,
  async activate(ctx) {
    const cfg = ctx.config as ModelActorsConfig;
    const ck = openCheckpoint(cfg.model);
    await ck.prefetch(attentionTensors(ck.config, cfg.mtp ?? false)); // a cold start at the read rate
    const runner = new StepRunner(ck, kernelsFor(cfg.device?.[ATTENTION]), {
      pages: cfg.pages, pageSize: cfg.pageSize, mtp: cfg.mtp, kvCacheDtype: cfg.kvCacheDtype,
    });
    const router = `${ROUTER}/${Number(ctx.self.key) % cfg.routers}`;
    // A route is idempotent (the router keeps no state but load counts): resent if its host dies.
    const s: State = {
      runner,
      routed: (layer, x, T) => ctx.ask<Float32Array>(router, { type: "route", layer, x, T, table: s.table } satisfies RouterMsg, { retry: true }),
    };
    return s;
  },
  holdsState(s: State) {
    return s.runner.live.size > 0;
  },
  async handle(s, msg) {
    switch (msg.type) {
      case "step":
        s.table = msg.table; // one step at a time: every route of this step names its table
        try {
          return await s.runner.run(msg.work, s.routed);
        } catch (e) {
          // An error from an ask is another actor's trouble; any other came from this step's work.
          const asked = e instanceof ActorError;
          return {
            failed: (e as Error).message, unavailable: asked, final: asked && (e.code === "timeout" || e.code === "unavailable"),
          } satisfies StepFailure;
        }
      case "release":
        s.runner.release(msg.seqs);
        return undefined;
      case "mtp_logits": {
        const [r] = await s.runner.run([{ seq: "mtp", tokens: msg.tokens, start: 0, pages: msg.pages, hidden: true }], s.routed);
        try {
          return await s.runner.mtpLogits("mtp", msg.tokens, r.hidden!, msg.pages, s.routed);
        } finally {
          s.runner.release(["mtp"]);
        }
      }
    }
  },
});
