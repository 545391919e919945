// The expert actor: owns a set of routed experts of every MoE layer (weights mapped from the
// checkpoint per layer on first use) and runs them as grouped matmuls over the rows it is sent.
// Online EPLB moves experts while it serves: `hold` takes more (read on first use), `drop` frees
// them. Where the routers' table has copies of an expert (so it may run here one call and on
// another actor the next) it answers each (token, expert) row on its own, weighted but not summed:
// the router adds a token's experts in one fixed order, so an output does not depend on where its
// experts ran. Otherwise it sums a token's experts here, in the grouped kernel (a smaller answer
// and no adds on the router: decode on bench-m pays ~15% for the unsummed rows).
import { defineActor } from "../src/runtime/actor.ts";
import { openCheckpoint } from "../src/checkpoint/checkpoint.ts";
import { expertTensors } from "../src/checkpoint/prefetch.ts";
import { kernelsFor } from "../src/kernels/select.ts";
import { ExpertSet } from "../src/model/experts.ts";
import { moeLayers } from "../src/model/moe.ts";
import { EXPERT, type ExpertMsg, type ExpertReply, type ModelActorsConfig } from "../src/protocol.ts";

type ExpertsMsg = Extract<ExpertMsg, { type: "experts" }>;

/** [assignments, D]: row r = weight[r] * Expert(x[token[r]]), each row its own output row. */
function runRows(set: ExpertSet, msg: ExpertsMsg): Float32Array {
  const D = set.hiddenSize, n = msg.token.length;
  // Each assignment reads its own copy of its token's row: the kernel writes row r to the row it
  // reads. An expert's rows keep their order (ascending tokens), so its grouped matmul sees the
  // same rows in the same tiles as on any other actor.
  const x = new Float32Array(n * D); // [n, D]
  for (let r = 0; r < n; r++) x.set(msg.x.subarray(msg.token[r]! * D, msg.token[r]! * D + D), r * D);
  const out = new Float32Array(n * D);
  set.forward(out, x, n, msg.layer, { token: Int32Array.from({ length: n }, (_, r) => r), expert: msg.expert, weight: msg.weight });
  return out;
}

/** [n, D]: row i = the weighted sum of x's row i's experts held here. */
function runSummed(set: ExpertSet, msg: ExpertsMsg): Float32Array {
  const out = new Float32Array(msg.x.length);
  set.forward(out, msg.x, msg.x.length / set.hiddenSize, msg.layer, { token: msg.token, expert: msg.expert, weight: msg.weight });
  return out;
}

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
    switch (msg.type) {
      case "experts": {
        const missing = [...new Set(msg.expert)].filter((e) => !set.holds(msg.layer, e));
        if (missing.length) set.hold(missing);
        return msg.rows ? runRows(set, msg) : runSummed(set, msg);
      }
      case "hold":
        set.hold(msg.experts);
        return set.experts;
      case "drop":
        set.drop(msg.experts);
        return set.experts;
      case "held":
        return set.experts;
    }
  },
});
