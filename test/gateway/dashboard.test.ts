// The dashboard in a real browser: Debian's chromium (scripts/install-chromium.sh), driven by
// playwright-core, against the gateway serving the tiny fixture on a real engine. Before any request
// no attention actor is active and no expert has seen a token; after some load the actor table shows
// attention/0 active and the heat map has non-zero cells.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium } from "playwright-core";
import { createBackend } from "../../src/commands/backend.ts";
import { ModelEngine } from "../../src/engine/engine.ts";
import { createApp, serveApp } from "../../src/gateway/index.ts";
import { loadTokenizer } from "../../src/tokenizer/index.ts";

const root = new URL("../..", import.meta.url).pathname;
const MODEL = `${root}test/fixtures/tiny-dsv3`;
const CHROMIUM = "/usr/bin/chromium";

// the project's own installer; a machine where it cannot install (no root, no apt) skips with the reason
const install = spawnSync("bash", [`${root}scripts/install-chromium.sh`], { encoding: "utf8" });
const skipReason = install.status === 0 ? null : `chromium could not be installed: ${(install.stderr || install.stdout).trim()}`;
if (skipReason) console.warn(`dashboard.test.ts skipped: ${skipReason}`);

async function until(cond: () => Promise<boolean>, what: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(100);
  }
}

describe.skipIf(skipReason !== null)("GET /dashboard in headless chromium", () => {
  let engine: ModelEngine, server: ReturnType<typeof serveApp>, browser: BrowserContext, profile: string;
  beforeAll(async () => {
    const backend = await createBackend({ model: MODEL, scaling: `${root}configs/scaling/inprocess.yaml`, kvTokens: 2048 });
    engine = new ModelEngine(backend, { servedModelName: "tiny" });
    server = serveApp(createApp({ engine, tokenizer: await loadTokenizer(MODEL), apiKeys: ["k1"] }), { port: 0 });
    profile = mkdtempSync(join(tmpdir(), "moe-chromium-"));
    // a fresh --user-data-dir: playwright takes it as launchPersistentContext's first argument
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, viewport: { width: 1200, height: 900 },
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"],
    });
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    server?.stop(true);
    await engine?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  test("the actor table and the expert heat map follow the load", async () => {
    const url = `http://127.0.0.1:${server.port}`;
    const page = await browser.newPage();
    await page.goto(`${url}/dashboard#key=k1`);
    const actors = page.getByTestId("actors"), heat = page.getByTestId("expert-heatmap");
    // first poll drawn: every actor the model needs has a row; nothing has run, so no token was routed
    await page.waitForSelector('[data-testid="actors"] tr[data-actor="attention/0"]', { timeout: 60_000 });
    expect(await actors.locator('tr[data-actor="attention/0"]').getAttribute("data-state")).toBe("passivated");
    expect(await heat.locator("td[data-tokens]:not([data-tokens='0'])").count()).toBe(0);

    const prompts = ["The fox", "Once upon a time", "Hello"];
    const answers = await Promise.all(prompts.map((prompt) => fetch(`${url}/v1/completions`, {
      method: "POST", headers: { "content-type": "application/json", authorization: "Bearer k1" },
      body: JSON.stringify({ model: "tiny", prompt, max_tokens: 8, temperature: 0, ignore_eos: true }),
    })));
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);

    await page.waitForSelector('[data-testid="actors"] tr[data-actor="attention/0"][data-state="active"]', { timeout: 60_000 });
    await until(async () => (await heat.locator("td[data-tokens]:not([data-tokens='0'])").count()) > 0, "non-zero heat-map cells");
    const hot = await heat.locator("td[data-tokens]").evaluateAll((tds) => tds.map((td) => Number(td.getAttribute("data-tokens"))));
    expect(hot.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    // TTFT/TPOT counted the three requests
    await until(async () => (await page.getByTestId("latency").innerText()).includes("TTFT\t3"), "TTFT count 3");
    await page.screenshot({ path: join(tmpdir(), "moe-dashboard.png"), fullPage: true });
  }, 180_000);
});
