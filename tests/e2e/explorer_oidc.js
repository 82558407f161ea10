// Signs in to the explorer (tests/e2e/test_explorer_oidc.py) through Keycloak's login page and prints what
// the page shows after: the tenant, its forms, where the token is kept and what the URL holds.
const [playwrightPath, chromium, argsJson, origin, user, password] = process.argv.slice(2);
const { chromium: launcher } = require(playwrightPath);
(async () => {
  const browser = await launcher.launch({ executablePath: chromium, args: JSON.parse(argsJson) });
  const page = await browser.newPage();
  const errors = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${origin}/explorer/#/forms`);
  await page.click("#oidc-sign-in");
  await page.waitForSelector("#username");
  const loginPage = page.url();
  await page.fill("#username", user);
  await page.fill("#password", password);
  await page.click("#kc-login");
  await page.waitForSelector("#forms");
  const seen = {
    loginPage,
    url: page.url(),
    who: await page.textContent("#who"),
    forms: await page.$$eval("#forms tbody tr", (rows) => rows.map((r) => r.cells[0].textContent)),
    stored: await page.evaluate(() => sessionStorage.getItem("pageforge.explorer.key")),
    localStorage: await page.evaluate(() => localStorage.length),
    errors,
  };
  await browser.close();
  process.stdout.write(JSON.stringify(seen));
})().catch((error) => { console.error(error); process.exit(2); });
