// Opens a form of a 1,001-version chain at the default depth, then the whole chain, pans and zooms it, and
// prints what it drew and how long each took (reported, not asserted: the machine is shared).
const [playwrightPath, chromium, argsJson, origin, key, formKey] = process.argv.slice(2);
const { chromium: launcher } = require(playwrightPath);
(async () => {
  const browser = await launcher.launch({ executablePath: chromium, args: JSON.parse(argsJson) });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(origin + "/explorer/");
  await page.fill("#key", key);
  await page.click("#sign-in-form button[type=submit]");
  await page.waitForSelector("#view h1");
  await page.goto(`${origin}/explorer/#/form/${formKey}`);
  await page.waitForSelector("svg .node");
  const around = { nodes: await page.$$eval("svg .node", (n) => n.length), counts: await page.textContent("#counts") };
  let started = Date.now();
  await page.fill("#depth", "1000");
  await page.click("text=Show");
  await page.waitForFunction(() => document.querySelectorAll("svg .node").length > 1000, null, { timeout: 120000 });
  const drawMs = Date.now() - started;
  started = Date.now();
  const box = await page.locator(".graph svg").boundingBox();
  await page.mouse.move(box.x + 300, box.y + 200);
  await page.mouse.down();
  await page.mouse.move(box.x + 100, box.y + 250, { steps: 10 });
  await page.mouse.up();
  for (let i = 0; i < 5; i++) await page.mouse.wheel(0, 300);
  await page.click("text=Fit");
  const panZoomMs = Date.now() - started;
  const whole = { nodes: await page.$$eval("svg .node", (n) => n.length), edges: await page.$$eval("svg .edge", (e) => e.length), counts: await page.textContent("#counts") };
  await page.screenshot({ path: process.env.SCREENSHOT });
  await browser.close();
  process.stdout.write(JSON.stringify({ around, whole, drawMs, panZoomMs, errors }));
})().catch((error) => { console.error(error); process.exit(2); });
