// Preloaded by bunfig.toml before the test files. Bun 1.4.5 has no `[test] timeout` key in
// bunfig.toml (every test gets 5 s), and golden checks that load real checkpoints and run the
// whole model take 6-22 s on a loaded machine. `npm test` passes `--timeout 120000`, which covers
// every file and hook; a setDefaultTimeout here covers only the first file of a run, so it is
// only a fallback for `bun test one/file.test.ts` (set MOE_TEST_TIMEOUT_MS to choose another).
import { setDefaultTimeout } from "bun:test";

setDefaultTimeout(Number(process.env.MOE_TEST_TIMEOUT_MS) || 120_000);
