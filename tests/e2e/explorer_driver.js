// Drives the explorer (tests/e2e/test_explorer.py) through the views a plan names, and prints one JSON
// object: what each step saw, the axe violations of each view, and console errors (CSP violations among
// them). A screenshot of each view goes to the plan's folder.
const [playwrightPath, axePath, chromium, argsJson, planJson] = process.argv.slice(2);
const { chromium: launcher } = require(playwrightPath);
const fs = require("fs");
const axeSource = fs.readFileSync(axePath, "utf8");
const plan = JSON.parse(planJson);
(async () => {
  const browser = await launcher.launch({ executablePath: chromium, args: JSON.parse(argsJson) });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const out = { console: [], axe: {}, steps: {} };
  page.on("console", (m) => { if (m.type() === "error") out.console.push(m.text()); });
  page.on("pageerror", (e) => out.console.push(String(e)));
  const axe = async (name) => {
    await page.evaluate(axeSource);
    out.axe[name] = await page.evaluate(async () =>
      (await axe.run(document, { resultTypes: ["violations"] })).violations.map((v) => ({
        id: v.id, impact: v.impact, help: v.help, targets: v.nodes.slice(0, 3).map((n) => n.target.join(" ")), html: v.nodes[0].html.slice(0, 300), summary: v.nodes[0].failureSummary,
      })));
    if (plan.screenshots) await page.screenshot({ path: `${plan.screenshots}/${plan.name}-${name}.png`, fullPage: true });
  };
  await page.goto(plan.origin + "/explorer/");
  await axe("sign-in");
  await page.fill("#key", plan.key);
  await page.click("#sign-in-form button[type=submit]");
  await page.waitForSelector("#view h1");
  out.steps.forms = await page.$$eval("#forms tbody tr", (rows) => rows.map((r) => r.cells[0].textContent));
  out.steps.keyInUrl = page.url().includes(plan.key);
  out.steps.keyInLocalStorage = await page.evaluate((k) => JSON.stringify(localStorage).includes(k), plan.key);
  await axe("forms");
  if (!plan.form) {
    await page.goto(`${plan.origin}/explorer/#/form/${plan.formKey}`);
    await page.waitForSelector("#view .error");
    out.steps.formError = await page.textContent("#view .error");
    await browser.close();
    process.stdout.write(JSON.stringify(out));
    return;
  }
  await page.goto(`${plan.origin}/explorer/#/form/${plan.formKey}?depth=20`);
  await page.waitForSelector("svg .node");
  await page.waitForSelector("#version-title");
  out.steps.nodes = await page.$$eval("svg .node", (ns) => ns.map((n) => n.dataset.id));
  out.steps.edges = await page.$$eval("svg .edge", (es) => es.map((e) => [e.dataset.child, e.dataset.parent]));
  out.steps.latest = await page.$$eval("svg .node.latest", (ns) => ns.map((n) => n.dataset.id));
  out.steps.labels = await page.$$eval("svg .node", (ns) => ns.map((n) => n.getAttribute("aria-label")));
  await axe("lineage");
  await page.focus(`svg .node[data-id="${plan.form.root}"]`);
  await page.keyboard.press("ArrowRight");
  out.steps.keyboardNext = await page.evaluate(() => document.activeElement.dataset.id);
  await page.click(`svg .edge[data-child="${plan.form.edge[0]}"][data-parent="${plan.form.edge[1]}"]`);
  await page.waitForSelector("#diff-title");
  out.steps.diffTitle = await page.textContent("#diff-title");
  out.steps.changes = await page.$$eval("#changes li", (items) => items.map((i) => i.textContent));
  await page.waitForFunction(() => document.querySelector("#details iframe")?.srcdoc.length > 0);
  await axe("diff");
  await page.click(`svg .node[data-id="${plan.form.merge}"]`);
  await page.waitForFunction((n) => document.querySelector("#version-title")?.textContent.endsWith(n), ` v${plan.form.mergeNumber}`);
  await page.waitForFunction(() => document.querySelector("#details iframe")?.srcdoc.length > 0);
  out.steps.renderInputs = await page.frameLocator("#details iframe").locator("input, select, textarea").count();
  out.steps.usedBy = await page.textContent("#details");
  await page.waitForSelector("#similar li");
  await axe("version");
  // Compare any two: mark this one, open the first, compare.
  await page.click("text=Mark to compare");
  await page.click(`svg .node[data-id="${plan.form.root}"]`);
  await page.waitForFunction(() => document.querySelector("#version-title")?.textContent.endsWith(" v1"));
  await page.click("#compare-marked");
  await page.waitForSelector("#comparison h2");
  out.steps.comparison = await page.textContent("#comparison");
  await axe("compare");
  await page.goto(`${plan.origin}/explorer/#/form/${plan.formKey}?depth=20`);
  await page.waitForSelector("#version-title");
  await page.click("text=Show as a table");
  await page.waitForSelector("#lineage-table");
  out.steps.tableRows = await page.$$eval("#lineage-table tbody tr", (rows) => rows.length);
  await axe("table");
  await page.goto(`${plan.origin}/explorer/#/search?q=${encodeURIComponent(plan.search)}`);
  await page.waitForSelector("#hits li");
  out.steps.hits = await page.$$eval("#hits li a", (as) => as.map((a) => a.getAttribute("href")));
  await axe("search");
  await browser.close();
  process.stdout.write(JSON.stringify(out));
})().catch((error) => { console.error(error); process.exit(2); });
