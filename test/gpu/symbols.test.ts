// The device libraries export exactly the CPU library's kernel ABI (scripts/check-symbols.sh).
// npm test builds them first; where nvcc is absent there is nothing to check.
import { expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dir, "..", "..");
const built = ["cuda", "hip", "emu"].filter((b) => existsSync(join(root, "kernels", "build", `libmoe_${b}.so`)));
const cudaBuilt = built.includes("cuda");
if (!cudaBuilt) console.log("[gpu] SKIPPED symbols of libmoe_cuda.so: not built (no nvcc on this machine)");

test.skipIf(built.length === 0)(`device libraries export the CPU ABI (${built.join(", ") || "none built"})`, () => {
  const r = Bun.spawnSync(["bash", join(root, "scripts", "check-symbols.sh")], { stdout: "pipe", stderr: "pipe" });
  const out = r.stdout.toString() + r.stderr.toString();
  if (r.exitCode !== 0) throw new Error(`check-symbols.sh failed:\n${out}`);
  for (const b of built) expect(out).toContain(`libmoe_${b}.so: exports the`);
});
