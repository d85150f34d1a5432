// Browser tests of the web console: a real headless Chromium (Debian's
// `chromium`, driven by playwright-core) against `cohort demo --serve`.
// Logs in per role, watches rounds arrive live and the plan finish, opens a
// ledger entry and checks its proofs are shown verified, runs the whole-log
// audit, checks refused pages, runs axe-core on every page (no serious or
// critical violation) and saves a screenshot of each page to docs/console/.
//
//   COHORT_BIN=target/debug/cohort NODE_PATH=<dir with playwright-core and
//   axe-core>/node_modules node tests/console/console_test.cjs
"use strict";
const { spawn } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { chromium } = require("playwright-core");

const { root, shots, browserPath, check, assert, accessible, shoot, login, finish, crashed } = require("./browser.cjs");

const cohort = process.env.COHORT_BIN || path.join(root, "target/debug/cohort");
// Enough rounds (about 40 s in a debug build) to open the page while they run;
// a budget that many DP-SGD rounds do not exhaust.
const rounds = process.env.COHORT_CONSOLE_ROUNDS || "300";

/** Start the demo federation with its console: `ready` resolves with the URL
 * and password, `settled` once the run is over and its ledger published. */
function startDemo(workdir) {
  const demo = spawn(cohort, ["demo", "--serve", "--rounds", rounds, "--epsilon-budget", "50", "--no-baselines",
    "--workdir", workdir, "--report", path.join(workdir, "report.html")],
  { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  const settled = new Promise((resolve) => {
    demo.stdout.on("data", (chunk) => {
      if ((out + chunk).includes("serving the console")) { resolve(); }
    });
  });
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no console URL in 300 s:\n${out}`)), 300000);
    demo.stdout.on("data", (chunk) => {
      out += chunk;
      process.stdout.write(chunk.toString().split("\n").map((l) => l && `# ${l}`).join("\n"));
      const url = /console: (http:\/\/\S+?)\/? /.exec(out);
      const password = /console logins: .*; password: (\S+)/.exec(out);
      if (url && password) {
        clearTimeout(timer);
        resolve({ url: url[1], password: password[1] });
      }
    });
    demo.on("exit", (code) => reject(new Error(`cohort demo exited with ${code}:\n${out}`)));
  });
  return { demo, ready, settled };
}

async function main() {
  fs.mkdirSync(shots, { recursive: true });
  const workdir = fs.mkdtempSync(path.join(os.tmpdir(), "cohort-console-"));
  const { demo, ready, settled } = startDemo(workdir);
  const browser = await chromium.launch({ executablePath: browserPath, args: ["--no-sandbox"] });
  try {
    const { url: base, password } = await ready;

    await check("a wrong password is refused", async () => {
      const page = await (await browser.newContext({ bypassCSP: true })).newPage();
      await page.goto(`${base}/login`);
      await page.fill("#user", "auditor");
      await page.fill("#password", "not-the-password");
      await page.click("button[type=submit]");
      await page.waitForSelector("p.error");
      assert((await page.textContent("p.error")).includes("wrong password"), "no error shown");
      await accessible(page, "login");
      await shoot(page, "login");
    });

    const scientist = await login(browser, base, "data-scientist", password);
    await check("the data scientist watches rounds arrive live and the plan finish", async () => {
      await scientist.goto(`${base}/rounds`);
      const before = await scientist.locator("#rounds-body tr").count();
      await scientist.waitForFunction(() => document.getElementById("live").textContent.startsWith("live"),
        null, { timeout: 60000 });
      await scientist.waitForFunction((n) => document.querySelectorAll("#rounds-body tr").length > n,
        before, { timeout: 300000 });
      await scientist.waitForFunction(() => document.getElementById("phase").textContent === "Completed",
        null, { timeout: 600000 });
      const rows = await scientist.locator("#rounds-body tr").count();
      assert(rows === Number(rounds), `${rows} rows after the plan, expected ${rounds}`);
      assert(await scientist.locator("#chart canvas").count() === 1, "no chart drawn");
      await accessible(scientist, "rounds");
      await shoot(scientist, "rounds");
    });

    await check("the plan page shows the code hash and every hospital's approval", async () => {
      await scientist.goto(`${base}/plans`);
      assert((await scientist.textContent("#code-hash")).trim().length === 64, "no code hash");
      const decisions = await scientist.locator("#approvals tbody td:nth-child(2)").allTextContents();
      assert(decisions.length === 4 && decisions.every((d) => d === "approved"), `approvals: ${decisions}`);
      await accessible(scientist, "plans");
      await shoot(scientist, "plans");
    });

    const dpo = await login(browser, base, "dpo", password);
    await check("the DPO sees epsilon spent per hospital against the budget", async () => {
      await dpo.goto(`${base}/privacy`);
      const meters = await dpo.locator("#epsilon meter").evaluateAll((ms) => ms.map((m) => [m.value, m.max]));
      assert(meters.length === 4, `${meters.length} meters`);
      assert(meters.every(([v, max]) => v > 0 && v <= max), `epsilon over budget or none: ${meters}`);
      await accessible(dpo, "privacy");
      await shoot(dpo, "privacy");
      await dpo.goto(`${base}/`);
      await accessible(dpo, "overview");
      await shoot(dpo, "overview");
    });

    await settled;
    const auditor = await login(browser, base, "auditor", password);
    await check("the auditor opens a ledger entry and sees its proofs verified", async () => {
      await auditor.goto(`${base}/ledger`);
      await auditor.waitForSelector("#cosignatures");
      const verdict = await auditor.textContent("p.verdict");
      assert(verdict.includes("valid witness cosignatures") && verdict.startsWith("✔"), verdict);
      await accessible(auditor, "ledger");
      await shoot(auditor, "ledger");
      await auditor.click("#entries a >> text=3");
      await auditor.waitForURL(/\/ledger\/entries\/3$/);
      const inclusion = await auditor.textContent("#inclusion p.verdict");
      assert(inclusion.startsWith("✔ Verified: entry 3 is in the log"), inclusion);
      const consistency = await auditor.textContent("#consistency p.verdict");
      assert(consistency.includes("is a prefix of the published checkpoint"), consistency);
      assert((await auditor.textContent("#kind")).length > 0, "entry not decoded");
      await accessible(auditor, "ledger-entry");
      await shoot(auditor, "ledger-entry");
    });

    await check("the auditor verifies the whole log from the page", async () => {
      await auditor.goto(`${base}/ledger`);
      await auditor.click("text=Verify the whole log");
      await auditor.waitForSelector("#audit p.verdict", { timeout: 60000 });
      const verdict = await auditor.textContent("#audit p.verdict");
      assert(verdict.includes("The whole log verifies"), verdict);
      assert(auditor.url().endsWith("/ledger"), "htmx swapped the report in place");
      await accessible(auditor, "ledger-audit");
      await shoot(auditor, "ledger-audit");
    });

    const clinician = await login(browser, base, "clinician", password);
    await check("pages are refused to the wrong role", async () => {
      for (const [page, target] of [[clinician, "/rounds"], [clinician, "/ledger"], [dpo, "/nowhere"]]) {
        const response = await page.goto(`${base}${target}`);
        const expected = target === "/nowhere" ? 404 : 403;
        assert(response.status() === expected, `${target}: ${response.status()}`);
      }
      await clinician.goto(`${base}/privacy`);
      assert((await clinician.textContent("main")).includes("not open to the role"), "no refusal page");
      await accessible(clinician, "refused");
      await shoot(clinician, "refused");
      // The audit action is the auditor's and the DPO's: a data scientist's
      // POST from the console's own origin (session cookie sent) is refused.
      await scientist.goto(`${base}/ledger`);
      const status = await scientist.evaluate(async () => (await fetch("/ledger/verify", {
        method: "POST", redirect: "manual",
        headers: { "content-type": "application/x-www-form-urlencoded" }, body: "csrf=x",
      })).status);
      assert(status === 403, `verify as data scientist: ${status}`);
    });
  } finally {
    await browser.close();
    demo.kill("SIGTERM");
    fs.rmSync(workdir, { recursive: true, force: true });
  }
  finish();
}

main().catch(crashed);
