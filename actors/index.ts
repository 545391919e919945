// The model's actor kinds, handed to the runtime at start-up (every host imports this module).
import { defineRegistry } from "../src/runtime/registry.ts";
import { attention } from "./attention.ts";
import { expert } from "./expert.ts";
import { router } from "./router.ts";

export const registry = defineRegistry(attention, router, expert);
