// Preloaded by bunfig.toml before every test file. Bun 1.4.5 has no `[test] timeout` key in
// bunfig.toml (it is ignored and every test gets 5 s), and golden checks that load real
// checkpoints and run the whole model take 6-22 s on a loaded machine: give every test 120 s.
// This wins over `bun test --timeout`; set MOE_TEST_TIMEOUT_MS to choose another default.
import { setDefaultTimeout } from "bun:test";

setDefaultTimeout(Number(process.env.MOE_TEST_TIMEOUT_MS) || 120_000);
