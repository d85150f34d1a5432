// Helpers shared by the console's browser tests: checks counted and
// reported TAP-style, axe-core runs, screenshots and logins.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const root = path.resolve(__dirname, "../..");
const shots = process.env.COHORT_SCREENSHOTS || path.join(root, "docs/console");
const browserPath = process.env.CHROMIUM || "/usr/bin/chromium";
const axeSource = fs.readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

const counts = { passed: 0, failed: 0 };
async function check(name, body) {
  try {
    await body();
    counts.passed += 1;
    console.log(`ok - ${name}`);
  } catch (e) {
    counts.failed += 1;
    console.log(`not ok - ${name}\n  ${String(e && e.stack || e).split("\n").join("\n  ")}`);
  }
}
function assert(condition, message) {
  if (!condition) { throw new Error(message); }
}

const seen = [];
/** Run axe-core on the page: no serious or critical violation. */
async function accessible(page, name) {
  await page.addScriptTag({ content: axeSource });
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  seen.push(name);
  assert(bad.length === 0, `${name}: axe found ${bad.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target).join(", ")}`).join("; ")}`);
}

async function shoot(page, name) {
  await page.screenshot({ path: path.join(shots, `${name}.png`) });
}

async function login(browser, base, user, password) {
  const context = await browser.newContext({ bypassCSP: true, viewport: { width: 1200, height: 800 } });
  const page = await context.newPage();
  await page.goto(`${base}/`);
  assert(page.url().includes("/login"), `not sent to the login page: ${page.url()}`);
  await page.fill("#user", user);
  await page.fill("#password", password);
  await Promise.all([page.waitForURL((u) => !u.pathname.startsWith("/login")), page.click("button[type=submit]")]);
  const who = await page.textContent("form.who span");
  assert(who.includes(user), `logged in as ${who}, not ${user}`);
  return page;
}

/** Print the summary and exit with the tests' status. */
function finish() {
  console.log(`axe-core checked: ${seen.join(", ")}`);
  console.log(`${counts.passed} passed, ${counts.failed} failed`);
  process.exit(counts.failed === 0 ? 0 : 1);
}

/** Report a crash of the test itself as one more failure. */
function crashed(e) {
  console.error(e);
  console.log(`${counts.passed} passed, ${counts.failed + 1} failed`);
  process.exit(1);
}

module.exports = { root, shots, browserPath, check, assert, accessible, shoot, login, finish, crashed };
