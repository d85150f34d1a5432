// Browser tests of the node console (a hospital's own pages): a real
// headless Chromium against the console crate's `node_console` example, a
// node console over fixture data (three invented patients, one ultrasound
// study, a plan waiting for the DPO). Logs in per role, searches a patient
// and opens the chart and an ultrasound frame, manages consent, approves the
// waiting plan, reads the disclosures and access logs, checks pages refused
// to the wrong role, runs axe-core on every page (no serious or critical
// violation) and saves a screenshot of each page to docs/console/.
//
//   cargo build -p console --example node_console
//   NODE_CONSOLE_BIN=$CARGO_TARGET_DIR/debug/examples/node_console \
//   NODE_PATH=<dir with playwright-core and axe-core>/node_modules node tests/console/node_console_test.cjs
"use strict";
const { spawn } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const { chromium } = require("playwright-core");

const { root, shots, browserPath, check, assert, accessible, shoot, login, finish, crashed } = require("./browser.cjs");

const server = process.env.NODE_CONSOLE_BIN || path.join(root, "target/debug/examples/node_console");

/** Start the node console: resolves with its URL and the password of the run. */
function startNode() {
  const child = spawn(server, [], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no console URL in 120 s:\n${out}`)), 120000);
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const url = /node console: (http:\/\/\S+?)\/?\n/.exec(out);
      const password = /password: (\S+)/.exec(out);
      if (url && password) {
        clearTimeout(timer);
        resolve({ base: url[1], password: password[1] });
      }
    });
    child.on("exit", (code) => reject(new Error(`node_console exited with ${code}:\n${out}`)));
  });
  return { child, ready, output: () => out };
}

async function main() {
  fs.mkdirSync(shots, { recursive: true });
  const node = startNode();
  const browser = await chromium.launch({ executablePath: browserPath, args: ["--no-sandbox"] });
  try {
    const { base, password } = await node.ready;
    const clinician = await login(browser, base, "clinician", password);
    let viewer = "";
    let visit = "";

    await check("the clinician finds a patient by name and by identifier", async () => {
      await clinician.goto(`${base}/patients`);
      await clinician.fill("#q", "haddad");
      await Promise.all([clinician.waitForURL(/q=haddad/), clinician.click("form.search button")]);
      const names = await clinician.locator("#patients tbody th").allTextContents();
      assert(names.length === 1 && names[0] === "Amina Haddad", `found ${names}`);
      await accessible(clinician, "node-patients");
      await shoot(clinician, "node-patients");
      await clinician.goto(`${base}/patients?q=MRN-0003`);
      const byId = await clinician.locator("#patients tbody th").allTextContents();
      assert(byId.length === 1 && byId[0] === "Li Wei", `by identifier: ${byId}`);
    });

    await check("the clinician reads the chart: conditions, medications, allergies, notes, encounters, studies", async () => {
      await clinician.goto(`${base}/patients?q=haddad`);
      await Promise.all([clinician.waitForURL(/\/patients\/[^?]+$/), clinician.click("#patients a")]);
      assert((await clinician.textContent("h1")) === "Amina Haddad", "not the chart");
      for (const [table, text] of [["#Condition", "Gestational diabetes"], ["#MedicationRequest", "Metformin"],
        ["#AllergyIntolerance", "Penicillin"], ["#DocumentReference", "40th centile"],
        ["#Encounter", "Outpatient consultation"], ["#ImagingStudy", "View series"]]) {
        assert((await clinician.textContent(table)).includes(text), `${table} lacks ${text}`);
      }
      viewer = await clinician.getAttribute("#ImagingStudy a", "href");
      await accessible(clinician, "node-chart");
      await clinician.screenshot({ path: path.join(shots, "node-chart.png"), fullPage: true });
    });

    await check("the clinician opens an ultrasound frame rendered by the imaging service", async () => {
      await clinician.goto(`${base}${viewer}`);
      await clinician.waitForFunction(() => {
        const img = document.getElementById("frame");
        return img && img.complete && img.naturalWidth > 0;
      });
      const size = await clinician.evaluate(() => [document.getElementById("frame").naturalWidth,
        document.getElementById("frame").naturalHeight]);
      assert(size[0] === 800 && size[1] === 600, `frame is ${size}`);
      await accessible(clinician, "node-frame");
      await shoot(clinician, "node-frame");
    });

    await check("the clinician drafts a visit's note from its transcript and signs it", async () => {
      await clinician.goto(`${base}/patients?q=MRN-0003`);
      await Promise.all([clinician.waitForURL(/\/patients\/[^?]+$/), clinician.click("#patients a")]);
      await Promise.all([clinician.waitForURL(/\/encounters\//), clinician.click("#Encounter a")]);
      visit = new URL(clinician.url()).pathname;
      assert((await clinician.textContent("main")).includes("inhaler maybe twice a week"), "no transcript");
      await Promise.all([clinician.waitForURL(/\/encounters\/[^/]+$/),
        clinician.click("text=Draft the note from the transcript")]);
      const drafted = await clinician.textContent("section[aria-labelledby=h-notes]");
      assert(drafted.includes("(preliminary)") && drafted.includes("inhaler"), `no draft: ${drafted}`);
      await accessible(clinician, "node-visit-draft");
      await shoot(clinician, "node-visit-draft");
      await Promise.all([clinician.waitForURL(/\/encounters\/[^/]+$/), clinician.click("text=Sign this note")]);
      const signed = await clinician.textContent("section[aria-labelledby=h-notes]");
      assert(signed.includes("(final)") && !signed.includes("Sign this note"), `not signed: ${signed}`);
      await accessible(clinician, "node-visit-signed");
      await shoot(clinician, "node-visit-signed");
    });

    const billing = await login(browser, base, "billing", password);
    await check("pages are refused to the wrong role", async () => {
      const scientist = await login(browser, base, "data-scientist", password);
      const auditor = await login(browser, base, "auditor", password);
      for (const [page, target] of [[billing, viewer], [billing, "/consent"], [clinician, "/approvals"],
        [auditor, visit],
        [clinician, "/disclosures"], [scientist, "/patients"], [auditor, "/patients"]]) {
        const response = await page.goto(`${base}${target}`);
        assert(response.status() === 403, `${target}: ${response.status()}`);
      }
      await billing.goto(`${base}${viewer}`);
      assert((await billing.textContent("main")).includes("has no FHIR scope that reads ImagingStudy"), "no refusal page");
      await accessible(billing, "node-refused");
      await shoot(billing, "node-refused");
      // The chart a billing officer opens has no medications, allergies or studies.
      await billing.goto(`${base}${viewer.split("/imaging/")[0]}`);
      assert(await billing.locator("#MedicationRequest, #AllergyIntolerance, #ImagingStudy").count() === 0,
        "billing sees what its scopes do not read");
      assert(await billing.locator("#Condition").count() === 1, "billing does not see conditions");
    });

    const dpo = await login(browser, base, "dpo", password);
    await check("the DPO records a refusal of research use and withdraws it", async () => {
      await dpo.goto(`${base}/patients?q=MRN-0003`);
      const wei = (await dpo.getAttribute("#patients a", "href")).split("/").pop();
      await dpo.goto(`${base}/consent`);
      const before = await dpo.locator("#consents tbody tr").count();
      await dpo.fill("#patient", wei);
      await Promise.all([dpo.waitForURL(/\/consent$/), dpo.click("form.stack button[type=submit]")]);
      const rows = dpo.locator("#consents tbody tr", { hasText: "Li Wei" });
      assert(await dpo.locator("#consents tbody tr").count() === before + 1, "no new consent");
      assert((await rows.first().textContent()).includes("yes"), "Wei not left out of training");
      await accessible(dpo, "node-consent");
      await shoot(dpo, "node-consent");
      await Promise.all([dpo.waitForURL(/\/consent$/), rows.first().locator("button", { hasText: "Withdraw" }).click()]);
      assert((await rows.first().textContent()).includes("inactive"), "not withdrawn");
    });

    await check("the DPO approves the plan waiting for a person", async () => {
      await dpo.goto(`${base}/`);
      assert((await dpo.textContent("#pending")).includes("1 plan waiting"), "no plan waiting");
      await dpo.click("#pending a");
      await dpo.waitForURL(/\/approvals$/);
      assert((await dpo.textContent("#pending-plans")).includes("What leaves the hospital"), "no disclosure summary");
      await accessible(dpo, "node-approvals");
      await dpo.screenshot({ path: path.join(shots, "node-approvals.png"), fullPage: true });
      await Promise.all([dpo.waitForURL(/\/approvals$/), dpo.click("form.decision button[value=approve]")]);
      assert((await dpo.textContent("#h-pending")).includes("(0)"), "plan still waiting");
      assert((await dpo.textContent("#decided")).includes("approved"), "no decision recorded");
      assert(await dpo.locator("#allow-list tbody tr").count() === 1, "code hash not allowed");
      for (let i = 0; i < 50 && !node.output().includes("plan decided by dpo: Approve"); i += 1) {
        await new Promise((r) => setTimeout(r, 100));
      }
      assert(node.output().includes("plan decided by dpo: Approve"), "the node did not get the decision");
    });

    await check("the auditor reads what left the hospital and who opened which chart", async () => {
      const auditor = await login(browser, base, "auditor", password);
      await auditor.goto(`${base}/disclosures`);
      assert(await auditor.locator("#disclosures tbody tr").count() === 4, "disclosures missing");
      await accessible(auditor, "node-disclosures");
      await shoot(auditor, "node-disclosures");
      await auditor.goto(`${base}/access-log`);
      const log = await auditor.textContent("#access-log");
      for (const text of ["web console: patient chart", "web console: ultrasound frame viewer",
        "web console: rendered ultrasound frame", "web console: consent recorded"]) {
        assert(log.includes(text), `access log lacks ${text}`);
      }
      await accessible(auditor, "node-access-log");
      await shoot(auditor, "node-access-log");
    });
  } finally {
    await browser.close();
    node.child.kill("SIGTERM");
  }
  finish();
}

main().catch(crashed);
