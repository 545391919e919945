// The expert actor: owns a set of routed experts of every MoE layer (weights mapped from the
// checkpoint when the actor activates, per layer on first use) and runs them as grouped matmuls
// over the rows it is sent.
import { defineActor } from "../src/runtime/actor.ts";
import { openCheckpoint } from "../src/checkpoint/checkpoint.ts";
import { expertTensors } from "../src/checkpoint/prefetch.ts";
import { kernelsFor } from "../src/kernels/select.ts";
import { ExpertSet } from "../src/model/experts.ts";
import { moeLayers } from "../src/model/moe.ts";
import { EXPERT, type ExpertMsg, type ExpertReply, type ModelActorsConfig } from "../src/protocol.ts";

export const expert = defineActor<ExpertSet, ExpertMsg, ExpertReply>({
  kind: EXPERT,
  async activate(ctx) {
    const cfg = ctx.config as ModelActorsConfig;
    const held = cfg.expertActors[ctx.self.key];
    if (!held) throw new Error(`expert actor ${ctx.self.key} is not in the expert table`);
    const ck = openCheckpoint(cfg.model);
    await ck.prefetch(expertTensors(ck.config, held, cfg.mtp ?? false)); // a cold start at the read rate
    return new ExpertSet(ck, ck.config, kernelsFor(cfg.device?.[EXPERT]), moeLayers(ck.config), held);
  },
  handle(set, msg) {
    const n = msg.x.length / set.hiddenSize;
    const out = new Float32Array(msg.x.length); // [n, D]
    set.forward(out, msg.x, n, msg.layer, { token: msg.token, expert: msg.expert, weight: msg.weight });
    return out;
  },
});
