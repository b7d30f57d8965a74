// The web pages in a real browser (headless Chromium through playwright-core):
// register → verify by the mailed link → log in → edit settings → Start → status
// running with uptime increasing → Stop; an admin turns maintenance on in the admin
// page → the user sees the notice and Start shows the 503 message. Screenshots of
// every page at 1280 and 375 px go to the artifact directory; at 375 px no page may
// scroll sideways. Any console error (a CSP violation, a script error) fails.
//
// usage: node flow.mjs <base-url> <outbox-dir> <artifact-dir> <admin-email> <admin-password>
import { chromium } from "playwright-core";
import fs from "node:fs";
import path from "node:path";

const [base, outbox, artifacts, adminEmail, adminPassword] = process.argv.slice(2);
if (!adminPassword) {
  console.error("usage: node flow.mjs <base-url> <outbox-dir> <artifact-dir> <admin-email> <admin-password>");
  process.exit(2);
}
const executablePath = process.env.BLITZ_CHROMIUM || "/usr/bin/chromium";
const email = "trader@example.com";
const password = "correct horse battery";
const shots = [];
const problems = [];

function check(cond, what) {
  if (!cond) throw new Error("check failed: " + what);
}

async function waitFor(what, fn, timeoutMs = 15000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function verifyToken() {
  for (const name of fs.readdirSync(outbox).sort().reverse()) {
    if (!name.endsWith(".eml")) continue;
    const text = fs.readFileSync(path.join(outbox, name), "utf8").replace(/=\r?\n/g, "");
    if (!text.includes("To: " + email)) continue;
    const m = text.match(/\/verify\/([A-Za-z0-9_-]+)/);
    if (m) return m[1];
  }
  return null;
}

function watch(page, who) {
  page.on("console", (m) => {
    // Refused API calls (400, 401, 409, 503 …) are part of the flow; everything else
    // (CSP violations, script errors, missing files) is a problem.
    if (m.type() === "error" && !/status of (400|401|409|429|503)/.test(m.text())) problems.push(`${who} console error on ${page.url()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`${who} script error on ${page.url()}: ${e.message}`));
  page.on("dialog", (d) => d.accept());
}

// Screenshots at both widths; at 375 px the page must not scroll sideways.
async function capture(page, name) {
  for (const width of [1280, 375]) {
    await page.setViewportSize({ width, height: width === 375 ? 812 : 900 });
    await page.reload();
    await page.waitForLoadState("load");
    const scroll = await page.evaluate(() => document.documentElement.scrollWidth);
    if (width === 375) {
      check(scroll <= 375, `${name} at 375 px is ${scroll} px wide`);
      // Nothing may stick out of the screen either (tables scroll in their box).
      const wide = await page.evaluate(() => {
        const limit = document.documentElement.clientWidth + 1;
        return Array.from(document.querySelectorAll("body *"))
          .filter((e) => !e.closest(".table-wrap"))
          .filter((e) => {
            const r = e.getBoundingClientRect();
            return r.width > 0 && r.right > limit;
          })
          .map((e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className ? "." + e.className : ""));
      });
      check(wide.length === 0, `${name} at 375 px: wider than the screen: ${wide.slice(0, 5).join(", ")}`);
    }
    const file = path.join(artifacts, `${name}-${width}.png`);
    await page.screenshot({ path: file, fullPage: true });
    shots.push({ file, width, scrollWidth: scroll, title: await page.title() });
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

async function feedback(page, sel, want) {
  let last = "";
  try {
    return await waitFor(`"${want}" in ${sel}`, async () => {
      last = (await page.textContent(sel)) || "";
      return last.includes(want) ? last : null;
    });
  } catch (e) {
    throw new Error(e.message + `; it says: "${last}"`);
  }
}

async function login(page, who, pw) {
  await page.goto(base + "/login");
  await page.fill("#email", who);
  await page.fill("#password", pw);
  await Promise.all([page.waitForURL(base + "/"), page.click('button[type="submit"]')]);
}

const report = { ok: false, screenshots: shots };

async function registerAndVerify(page) {
  // An anonymous visit goes to the login page, which remembers where to return.
  await page.goto(base + "/settings");
  check(page.url().startsWith(base + "/login?next="), "redirected to /login, got " + page.url());
  await capture(page, "login");
  await page.goto(base + "/register");
  await page.fill("#email", email);
  await page.fill("#password", password);
  await page.click('button[type="submit"]');
  await feedback(page, "form .feedback", "We sent you an e-mail");
  const token = await waitFor("the verification mail", async () => verifyToken());
  await page.goto(base + "/verify/" + token);
  check((await page.textContent("h1")).includes("E-mail verified"), "verify page");
}

async function logInAfterAWrongPassword(page) {
  await page.goto(base + "/login");
  await page.fill("#email", email);
  await page.fill("#password", "not the password");
  await page.click('button[type="submit"]');
  await feedback(page, "form .feedback", "Invalid email or password");
  await login(page, email, password);
  check((await page.title()).startsWith("Dashboard"), "dashboard title");
}

// The API's own field error is shown, then a valid change with a new leg is saved.
async function editSettings(page) {
  await page.goto(base + "/settings");
  await page.fill("#leverage", "5");
  await page.fill("#stop_loss", "600");
  await page.click('#config-form button[type="submit"]');
  report.stop_loss_error = (await feedback(page, '[data-error-for="stop_loss"]', "must be below 500")).trim();
  // The preview refuses the ladder with the same words as the save.
  const refused = (await feedback(page, "#pv-error", "must be below 500")).toLowerCase();
  check(refused.includes(report.stop_loss_error.toLowerCase()), `preview "${refused}" vs save "${report.stop_loss_error}"`);
  await page.fill("#stop_loss", "0");
  await page.fill("#leverage", "20");
  // The take-profit minimum follows the leverage; the new fields are checked
  // before sending, like the others.
  await feedback(page, "#tp-minimum", "above 1.5 at 20x on paper");
  await page.fill("#trailing_take_profit", "0.01");
  await page.click('#config-form button[type="submit"]');
  await feedback(page, '[data-error-for="trailing_take_profit"]', "from 0.05 to 20");
  await page.fill("#trailing_take_profit", "0");
  await page.fill("#cooldown", "30");
  await page.selectOption("#after_stop_loss", "continue");
  await page.click("#add-leg");
  const legs = await page.$$eval("#grid-rows tr.leg", (r) => r.length);
  check(legs === 4, "four legs after Add leg, got " + legs);
  await page.fill("#amount-4", "40");
  await page.fill("#gap-4", "2.5");
  await page.fill("#rounds", "4");
  await page.fill("#telegram_chat_id", "123456");
  await page.click('#config-form button[type="submit"]');
  await feedback(page, "#config-form .feedback", "Configuration saved.");
  await page.reload();
  check((await page.inputValue("#leverage")) === "20", "leverage saved");
  check((await page.inputValue("#cooldown")) === "30", "cooldown saved");
  check((await page.inputValue("#after_stop_loss")) === "continue", "after_stop_loss saved");
  check((await page.$$("#grid-rows tr.leg")).length === 4, "four legs saved");
  await capture(page, "settings");
}

// The settings preview is the server's: for a few ladders what the page shows is
// what POST /api/bots/<id>/preview answers for the same body, and a ladder the
// server refuses shows the refusal PUT gives.
async function previewMatchesServer(page) {
  await page.goto(base + "/settings");
  const url = await page.getAttribute("#config-form", "data-preview");
  const ladders = [
    { leverage: "10", take_profit: "5", stop_loss: "0", rounds: "3" },
    { leverage: "3", take_profit: "8", stop_loss: "40", rounds: "2" },
    { leverage: "25", take_profit: "4", stop_loss: "0", rounds: "4" },
  ];
  const seen = [];
  for (const l of ladders) {
    for (const [k, v] of Object.entries(l)) await page.fill("#" + k, v);
    const shown = await waitFor("the preview of " + JSON.stringify(l), async () => {
      const p = await page.evaluate(() => window.BlitzPreview);
      const same = p && Object.entries(l).every(([k, v]) => String(p.body[k]) === v);
      return same && p.ok ? p : null;
    });
    const direct = await page.evaluate(async ([u, body]) => {
      const token = document.querySelector('meta[name="csrf-token"]').content;
      const r = await fetch(u, { method: "POST", body: JSON.stringify(body),
        headers: { "Content-Type": "application/json", "X-CSRF-Token": token } });
      return { status: r.status, data: await r.json() };
    }, [url, shown.body]);
    check(direct.status === 200, "preview answered " + direct.status);
    check(JSON.stringify(direct.data) === JSON.stringify(shown.data), "the page shows the server's preview");
    const amount = (v) => String(Number(Number(v).toFixed(8)));
    check((await page.textContent("#pv-tp")) === amount(direct.data.take_profit_price), "take-profit shown");
    check((await page.textContent("#pv-dev")).startsWith(amount(direct.data.deviation_covered)), "deviation shown");
    const rows = await page.$$eval("#pv-legs tbody tr", (r) => r.map((tr) => tr.children[1].textContent));
    check(JSON.stringify(rows) === JSON.stringify(direct.data.legs.map((x) => amount(x.price))), "each leg's price shown: " + rows);
    const devs = await page.$$eval("#pv-legs tbody tr", (r) => r.map((tr) => tr.children[4].textContent));
    const towards = direct.data.side === "short" ? "+" : "-";
    check(devs[0] === "0 %" && devs.slice(1).every((t) => t.startsWith(towards)),
      "legs on the " + direct.data.side + " side of the entry: " + devs);
    seen.push({ ladder: l, total_margin: direct.data.total_margin, legs: direct.data.legs.length, liquidation: direct.data.liquidation_price });
  }
  report.previews = seen;
}

// An API token is shown once, listed by name, and can be revoked.
async function createAndRevokeToken(page) {
  await page.fill("#token-name", "my script");
  await page.click('form[data-kind="token"] button[type="submit"]');
  const apiToken = await waitFor("the new token", async () => {
    const v = await page.inputValue("#new-token-value");
    return v.length > 20 ? v : null;
  });
  await page.goto(base + "/settings");
  check((await page.textContent(".tokens")).includes("my script"), "token listed");
  check(!(await page.content()).includes(apiToken), "token not shown again");
  await Promise.all([page.waitForEvent("load"), page.click('.tokens button:has-text("Revoke")')]);
  await waitFor("token revoked", async () => (await page.textContent(".tokens")).includes("No tokens."));
}

// The buttons a state allows: [start, stop, stop mode, recover] enabled.
async function controls(page) {
  return page.evaluate(() => ["start", "stop", "recover"].map((op) => !document.querySelector(`[data-op="${op}"]`).disabled)
    .concat([!document.querySelector("#stop-mode").disabled]));
}

// The chart's horizontal lines (lightweight-charts price lines) by title.
async function chartLines(page) {
  return page.evaluate(() => window.BlitzChart.series.priceLines().map((l) => ({ title: l.options().title, price: l.options().price })));
}

const near = (a, b) => Math.abs(Number(a) - Number(b)) < 1e-9;

// Every level of the ladder is a line on the chart at the price the API gives.
async function checkLadderLines(page) {
  const botId = await page.getAttribute("#bot", "data-bot");
  const get = async (path) => (await page.request.get(base + path)).json();
  const status = await get(`/api/bots/${botId}/status`);
  const orders = (await get(`/api/bots/${botId}/orders`)).orders;
  const want = [["avg entry", status.position.avg_entry], ["take-profit", status.take_profit_price],
    ["liquidation", status.position.liquidation_price]];
  orders.filter((o) => o.kind === "leg").forEach((o) => want.push(["leg " + o.leg, o.price]));
  check(want.length >= 5, "a position with a take-profit, liquidation and two resting legs: " + JSON.stringify(want));
  const lines = await waitFor("the ladder on the chart", async () => {
    const got = await chartLines(page);
    return want.every(([t, p]) => got.some((l) => l.title === t && near(l.price, p))) ? got : null;
  });
  const candles = await page.evaluate(() => window.BlitzChart.series.data().length);
  check(candles > 0, "the chart has candles");
  // Amounts are written as the API's decimals, and PnL rounds like the server.
  const shown = await page.evaluate(() => [window.Blitz.amount(5e-7), window.Blitz.amount(0.009),
    window.Blitz.signed(1.005), window.Blitz.signed(-0.004), window.Blitz.signed(-10.75)]);
  check(JSON.stringify(shown) === JSON.stringify(["0.0000005", "0.009", "+1.01", "+0.00", "-10.75"]),
    "amounts in exact decimals: " + JSON.stringify(shown));
  // The price scale has the market's decimals (its tick), not a fixed two.
  const tick = await page.getAttribute("#price-chart", "data-tick");
  const minMove = await page.evaluate(() => window.BlitzChart.series.options().priceFormat.minMove);
  check(tick && Number(tick) === minMove, "the price scale moves by the market's tick " + tick + ": " + minMove);
  report.chart_lines = lines;
  // The price and the distances are shown, in exact decimals.
  const price = await page.textContent("#st-price");
  check(/^\d+(\.\d+)?$/.test(price.trim()), "current price shown: " + price);
  check((await page.textContent("#st-to-tp")).includes("%"), "distance to the take-profit");
  check((await page.textContent("#st-to-leg")).includes("%"), "distance to the next leg");
  check(/\d/.test(await page.textContent("#pa-balance")), "paper balance shown");
}

// Exchange accounts have their own page; a key is required before the exchange is
// asked (the test never sends a key to a real exchange).
async function exchangeAccounts(page) {
  await page.goto(base + "/accounts");
  check((await page.textContent("#accounts")).includes("No exchange accounts yet."), "no accounts yet");
  await page.fill("#acct-name", "Main");
  await page.click('form[data-api="POST /api/exchange-accounts"] button[type="submit"]');
  report.account_error = await waitFor("the key's field error", async () =>
    ((await page.textContent('[data-error-for="api_key"]')) || "").trim() || null);
  await capture(page, "accounts");
}

// Start, running, uptime ticks up, controls follow the state, the ladder on the
// chart, Refresh, Recover, Stop.
async function runTheBot(page) {
  await page.goto(base + "/");
  check(JSON.stringify(await controls(page)) === "[true,false,false,false]", "stopped: only Start, got " + (await controls(page)));
  await page.click('[data-op="start"]');
  await feedback(page, "#op-feedback", "Bot started successfully");
  await waitFor("status running", async () => (await page.textContent("#st-badge")) === "running");
  await waitFor("running: no Start, Stop with its mode, Recover", async () => JSON.stringify(await controls(page)) === "[false,true,true,true]");
  const up1 = Number(await page.getAttribute("#st-uptime", "data-seconds"));
  const up2 = await waitFor("uptime to increase", async () => {
    const v = Number(await page.getAttribute("#st-uptime", "data-seconds"));
    return v >= up1 + 2 ? v : null;
  });
  // The page's clock ticks by itself; the server's uptime must grow too.
  const served = async () => {
    const r = await page.waitForResponse((r) => /\/api\/bots\/\d+\/status$/.test(r.url()), { timeout: 15000 });
    return (await r.json()).uptime;
  };
  const s1 = await served();
  const s2 = await waitFor("server uptime to increase", async () => {
    const v = await served();
    return v > s1 ? v : null;
  });
  report.uptime = [up1, up2, s1, s2];
  await page.click('[data-op="status"]');
  await feedback(page, "#op-feedback", "Status: running");
  await page.click('[data-op="recover"]');
  await feedback(page, "#op-feedback", "Recovery process completed");
  // The open orders come from the exchange: the ladder legs rest on paper.
  report.orders = (await feedback(page, "#open-orders tbody", "leg 2")).trim();
  await checkLadderLines(page);
  // Events are in words, with seconds.
  const firstEvent = (await page.textContent("#events li")) || "";
  check(/\d{2}:\d{2}:\d{2}/.test(firstEvent), "event time with seconds: " + firstEvent);
  // A change while running waits for the next cycle, and the dashboard says so.
  await page.goto(base + "/settings");
  await page.fill("#cooldown", "45");
  await page.click('#config-form button[type="submit"]');
  await feedback(page, "#config-form .feedback", "from its next cycle");
  check(await page.isVisible("#cfg-pending"), "pending notice on settings");
  await page.goto(base + "/");
  await waitFor("pending flag", async () => page.isVisible("#st-pending"));
  await page.selectOption("#stop-mode", "after_cycle");
  await page.click('[data-op="stop"]');
  await feedback(page, "#op-feedback", "stops when the current cycle closes");
  await waitFor("after-cycle flag", async () => page.isVisible("#st-after-cycle"));
  await capture(page, "dashboard");
  await page.selectOption("#stop-mode", "cancel_orders");
  await page.click('[data-op="stop"]');
  await feedback(page, "#op-feedback", "Bot stopped successfully");
  await waitFor("status stopped", async () => (await page.textContent("#st-badge")) === "stopped");
  await waitFor("stopped: Start only", async () => JSON.stringify(await controls(page)) === "[true,false,false,false]");
  await waitFor("stop reason", async () => (await page.textContent("#st-reason")) === "stopped by you");
  await page.goto(base + "/pnl?days=7");
  check((await page.$$(".chart-empty")).length === 1, "no trades yet, no chart");
}

// The admin turns maintenance on and sets a banner in the admin page, then
// (not held by maintenance) force starts and stops the user's bot.
async function adminConsole(admin) {
  await login(admin, adminEmail, adminPassword);
  await admin.goto(base + "/admin?query=trader");
  check((await admin.textContent(".users")).includes(email), "user listed in admin");
  await Promise.all([admin.waitForEvent("load"), admin.click("text=Turn maintenance on")]);
  await waitFor("maintenance on", async () => (await admin.$(".notice.maintenance")) !== null);
  await admin.fill("#message", "Exchange upgrade until 18:00 UTC");
  await Promise.all([admin.waitForEvent("load"), admin.click("text=Show banner")]);
  await waitFor("banner shown", async () => ((await admin.textContent("body")) || "").includes("Exchange upgrade until 18:00 UTC"));
  await capture(admin, "admin");
  await admin.goto(base + "/admin?query=trader");
  check(/^\d+$/.test((await admin.textContent("#tot-users")).trim()), "totals: users");
  check((await admin.textContent("#tot-pnl")).includes("USDT"), "totals: PnL");
  const buttons = async () => admin.evaluate(() => ["Start", "Stop", "Recover"].map((t) =>
    !Array.from(document.querySelectorAll(".users .actions button")).find((b) => b.textContent === t).disabled));
  check(JSON.stringify(await buttons()) === "[true,false,false]", "stopped bot: only Start, got " + (await buttons()));
  await Promise.all([admin.waitForEvent("load"), admin.click(".users button:has-text('Start')")]);
  check((await admin.textContent(".users .badge")) === "running", "forced start");
  check(JSON.stringify(await buttons()) === "[false,true,true]", "running bot: Stop and Recover, got " + (await buttons()));
  await admin.selectOption(".users select.mode", "cancel_orders");
  const asked = admin.waitForEvent("dialog");
  await Promise.all([admin.waitForEvent("load"), admin.click(".users button:has-text('Stop')")]);
  report.force_stop_confirm = (await asked).message();
  check(report.force_stop_confirm.includes("Force stop"), "force stop asks first");
  check((await admin.textContent(".users .badge")) === "stopped", "forced stop");
  await admin.fill("#filter", "nobody-has-this");
  check(await admin.$$eval("#users-table tr.user", (r) => r.every((x) => x.hidden)), "the filter hides rows");
  await admin.fill("#filter", "");
  await admin.click('#users-table button[data-sort="pnl"]');
  check((await admin.getAttribute('#users-table button[data-sort="pnl"]', "aria-sort")) === "ascending", "sortable");
  await admin.click(`.users a:has-text("${email}")`);
  await admin.waitForURL(/\/admin\/users\/\d+$/);
  const botRow = await admin.$$eval("#user-bots tbody tr button", (b) => b.map((x) => x.textContent + ":" + !x.disabled));
  check(JSON.stringify(botRow) === '["Start:true","Stop:false","Recover:false"]', "the user's bots with their state's actions: " + botRow);
  await capture(admin, "admin-user");
}

// The admin has closed trades (seeded by the test): equity curve with labelled
// axes, bars by day / week / month, tooltips by tap, win/loss, trades and CSV.
async function pnlWithTrades(admin) {
  await admin.goto(base + "/pnl");
  await admin.selectOption("#days", "7");
  await admin.waitForURL(/days=7/);
  const bars = await admin.$$eval("svg.chart rect", (r) => r.length);
  check(bars === 7, "a bar per day of the week, got " + bars);
  const points = await admin.$$eval("svg.equity circle", (c) => c.length);
  check(points === 7, "a point of the equity curve per day, got " + points);
  const labels = await admin.$$eval("svg.equity text", (t) => t.map((x) => x.textContent));
  check(labels.includes("USDT") && labels.includes("day (UTC)"), "labelled axes: " + labels);
  await admin.click("svg.equity circle:last-of-type");
  check((await admin.textContent("figure.tips .tip")).includes("equity"), "a tap shows the point's text");
  check((await admin.textContent(".winloss-fig figcaption")).includes("wins"), "win/loss");
  await capture(admin, "pnl");
  await admin.goto(base + "/pnl?days=365");
  const months = await admin.$$eval("svg.chart rect", (r) => r.length);
  check(months >= 12 && months <= 13, "a year is shown by month, got " + months + " bars");
  await admin.selectOption("#group", "week");
  await admin.waitForURL(/group=week/);
  const weeks = await admin.$$eval("svg.chart rect", (r) => r.length);
  check(weeks >= 52 && weeks <= 54, "by week, got " + weeks);
  const csv = await admin.request.get(base + "/api/trades.csv");
  check(csv.status() === 200 && csv.headers()["content-type"].startsWith("text/csv"), "CSV export");
  const lines = (await csv.text()).trim().split(/\r?\n/);
  check(lines[0].startsWith("id,bot_id,symbol,side,size") && lines.length === 8, "CSV header and the seven trades: " + lines.length);
  check(lines.slice(1).every((l) => !/\d\.\d*0000000\d/.test(l)), "exact decimals in the CSV");
  check((await admin.getAttribute('a[href="/api/trades.csv"]', "download")) !== null, "CSV link on the page");
}

// The user sees the notice and the banner; Start answers 503 with its message.
// After maintenance, a third Start is over the limit (2/hour in this test). The
// administrator's force stop is said on the dashboard.
async function maintenanceAndLimits(page, admin) {
  await page.goto(base + "/");
  check(await page.isVisible("#st-admin"), "stopped by an administrator, said on the dashboard");
  check((await page.$(".notice.maintenance")) !== null, "maintenance notice on the dashboard");
  check((await page.textContent(".notice.banner")).includes("Exchange upgrade"), "banner on the dashboard");
  await page.click('[data-op="start"]');
  report.maintenance = (await feedback(page, "#op-feedback", "under maintenance")).trim();
  await admin.goto(base + "/admin");
  await Promise.all([admin.waitForEvent("load"), admin.click("text=Turn maintenance off")]);
  await waitFor("maintenance off", async () => (await admin.$(".notice.maintenance")) === null);
  await page.goto(base + "/");
  await page.click('[data-op="start"]');
  report.rate_limited = (await feedback(page, "#op-feedback", "Too many requests")).trim();
}

// Under prefers-color-scheme: dark the pages are dark; the header's toggle picks
// the light theme, and the choice outlives a reload (localStorage).
async function darkTheme(browser) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: "dark" });
  const p = await ctx.newPage();
  watch(p, "dark");
  await login(p, email, password);
  const theme = () => p.evaluate(() => document.documentElement.dataset.theme);
  const background = () => p.evaluate(() => getComputedStyle(document.body).backgroundColor);
  check((await theme()) === "dark", "dark theme under prefers-color-scheme: dark");
  check((await background()) === "rgb(15, 20, 27)", "dark background, got " + (await background()));
  await capture(p, "dashboard-dark");
  await p.click("#theme-toggle");
  check((await theme()) === "light", "the toggle picks the light theme");
  await p.reload();
  check((await theme()) === "light" && (await background()) === "rgb(244, 246, 248)", "the choice is remembered");
  await ctx.close();
}

async function logOut(page) {
  await Promise.all([page.waitForURL(base + "/login"), page.click("text=Log out")]);
  await page.goto(base + "/");
  check(page.url().startsWith(base + "/login"), "logged out, got " + page.url());
}

async function main() {
  fs.mkdirSync(artifacts, { recursive: true });
  const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
  try {
    const viewport = { width: 1280, height: 900 };
    const page = await (await browser.newContext({ viewport })).newPage();
    watch(page, "user");
    const admin = await (await browser.newContext({ viewport })).newPage();
    watch(admin, "admin");
    await registerAndVerify(page);
    await logInAfterAWrongPassword(page);
    await editSettings(page);
    await previewMatchesServer(page);
    await createAndRevokeToken(page);
    await exchangeAccounts(page);
    await runTheBot(page);
    await adminConsole(admin);
    await pnlWithTrades(admin);
    await maintenanceAndLimits(page, admin);
    await darkTheme(browser);
    await logOut(page);
    check(problems.length === 0, "no console errors:\n" + problems.join("\n"));
    report.ok = true;
    console.log(JSON.stringify(report, null, 1));
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e.stack || String(e));
  if (problems.length) console.error(problems.join("\n"));
  process.exit(1);
});
