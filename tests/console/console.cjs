// Drives the admin console in headless Chromium (playwright-core, Debian's chromium) for
// tests/admin_console.rs:
//
//   node console.cjs URL ZNODE_DIR CHILD EXPECTED_DATA SCREENSHOT
//
// Loads URL, waits until the ensemble table shows every server live with exactly one
// leader, browses to ZNODE_DIR, clicks CHILD and waits for its data to read EXPECTED_DATA,
// then saves a full-page screenshot. Prints one JSON line with what it saw; exits non-zero
// on any failure (with the reason on stderr).
"use strict";

const path = require("path");
const os = require("os");
const fs = require("fs");

const dir = process.env.ARBOR_PLAYWRIGHT_DIR || path.join(os.homedir(), ".cache", "arbor-console-test");
const { chromium } = require(path.join(dir, "node_modules", "playwright-core"));

const [url, znodeDir, child, expected, shot] = process.argv.slice(2);
const STEP_MS = 20000;

async function main() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "arbor-chromium-"));
  // A fresh profile directory (playwright passes it as --user-data-dir).
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1400, height: 950 },
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  const errors = [];
  try {
    const page = await browser.newPage();
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
    await page.goto(url, { timeout: STEP_MS });
    // Three live servers, exactly one leader (the table refreshes every second).
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll('[data-testid="server-row"]')];
      const modes = rows.map((r) => r.dataset.mode);
      return rows.length === 3 && modes.filter((m) => m === "leader").length === 1 &&
        modes.filter((m) => m === "follower").length === 2;
    }, null, { timeout: STEP_MS });
    const modes = await page.$$eval('[data-testid="server-row"]', (rs) => rs.map((r) => r.dataset.mode));
    // Let ops/s and events fill in for the picture.
    await page.waitForTimeout(1500);
    // Browse: the root lists the test's directory; into it; click the child.
    await page.click(`[data-testid="child"]:text-is("${znodeDir.slice(1)}")`, { timeout: STEP_MS });
    await page.waitForFunction((d) => decodeURIComponent(location.hash) === "#" + d, znodeDir, { timeout: STEP_MS });
    await page.click(`[data-testid="child"]:text-is("${child}")`, { timeout: STEP_MS });
    await page.waitForFunction(
      (want) => document.querySelector('[data-testid="node-data"]').textContent === want,
      expected, { timeout: STEP_MS },
    );
    const stat = await page.$eval('[data-testid="node-stat"]', (t) => t.textContent);
    const events = await page.$$eval('[data-testid="events"] li', (ls) => ls.map((l) => l.textContent));
    await page.screenshot({ path: shot, fullPage: true });
    console.log(JSON.stringify({ modes, stat, events, errors }));
    if (errors.length) throw new Error("page errors: " + errors.join("; "));
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(String(e && e.stack || e));
  process.exit(1);
});
