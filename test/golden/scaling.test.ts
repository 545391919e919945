// The golden checks, unchanged, under every shipped scaling config: the same model must give the
// same logits and the same greedy tokens wherever its actors run.
import { readdirSync } from "node:fs";
import { createBackend } from "../../src/commands/backend.ts";
import { fixtures, goldenSuite } from "./suite.ts";

const dir = new URL("../../configs/scaling/", import.meta.url).pathname;
// Configs that place actors on other hosts need their workers running: test/nats covers them.
const configs = readdirSync(dir).filter((f) => f.endsWith(".yaml") && !f.startsWith("nats-")).sort();

for (const cfg of configs)
  for (const fx of fixtures())
    // The goldens are fp32 reference outputs: an f32 KV cache (the default, said here on purpose).
    goldenSuite(cfg, fx, (f) => createBackend({ model: f.model, scaling: dir + cfg, pages: 64, pageSize: 16, mtp: true, kvCacheDtype: "f32" }));
