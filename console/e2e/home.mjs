// Drives the operator console in a real browser (Debian's chromium through playwright-core, no browser download):
// local sign-in as an operator, the home page's figures, axe-core on each page, screenshots, and the budgets
// (gzipped JavaScript of the first page, time to the home page's figures). Called by ConsoleBrowserTests (xunit),
// which starts the platform and checks what this prints: one JSON line at the end.
// Usage: node console/e2e/home.mjs BASE_URL OUTPUT_DIR SUB
import { checker, launchChromium } from './lib.mjs';
import { mkdirSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const [base, out, sub] = process.argv.slice(2);
if (!base || !out || !sub) { console.error('usage: node home.mjs BASE_URL OUTPUT_DIR SUB'); process.exit(2); }
mkdirSync(out, { recursive: true });

const browser = await launchChromium();
const problems = [];
const result = { browser: browser.version(), axe: {}, screenshots: [], overflowsAt375: {} };
const check = checker(result, out);
try {
  // A phone first (375 px wide), in Chinese: the narrowest layout and the second language.
  const context = await browser.newContext({ viewport: { width: 375, height: 812 }, locale: 'zh-CN' });
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });

  // The first page's JavaScript as shipped: every script the load fetches, gzipped as a server would send it.
  const scripts = new Map();
  page.on('response', async (r) => {
    if (r.request().resourceType() === 'script') scripts.set(r.url(), r.body().then((b) => gzipSync(b, { level: 9 }).length));
  });
  await page.goto(new URL('/console/', base).href);
  await page.getByRole('heading', { name: '本地登录' }).waitFor();
  result.jsGzipBytes = (await Promise.all(scripts.values())).reduce((a, b) => a + b, 0);
  result.jsFiles = scripts.size;
  await check(page, 'sign-in');

  await page.getByLabel('用户 ID').fill(sub);
  await page.getByLabel('角色').selectOption('operator');
  await page.getByRole('button', { name: '登录' }).click();
  await page.getByTestId('figures').waitFor();
  await check(page, 'home-375');

  // Time to the home page's figures: a fresh load of /console/ while signed in (the session is in sessionStorage),
  // from navigation to the figures on screen: HTML, scripts, the token check and GET /api/stats/overview.
  const started = Date.now();
  await page.goto(new URL('/console/', base).href);
  await page.getByTestId('figures').waitFor();
  result.timeToFiguresMs = Date.now() - started;
  result.figures = await page.getByTestId('figures').locator('li').evaluateAll((items) =>
    items.map((li) => [li.querySelector('.label').textContent, li.querySelector('.value').textContent]));
  result.todayRows = await page.locator('#today-title + .scroll tbody tr').evaluateAll((rows) =>
    rows.map((tr) => [...tr.children].map((c) => c.textContent)));
  result.asOf = await page.getByTestId('as-of').textContent();
  // What waits for a decision (an operator sees the counts; the link to the queue is for those who decide).
  result.todo = await page.getByTestId('todo').locator('li').evaluateAll((items) =>
    items.map((li) => [li.querySelector('.label').textContent, li.querySelector('.value').textContent]));
  result.todoLinks = await page.getByTestId('todo').getByRole('link').count();
  result.headings = await page.getByRole('heading', { level: 1 }).allTextContents();
  result.landmarks = { main: await page.getByRole('main').count(), navigation: await page.getByRole('navigation').count(), banner: await page.getByRole('banner').count() };

  // The same page on a desktop, switched to English with the language control.
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.getByLabel('语言').selectOption('en');
  await page.getByRole('heading', { name: 'At a glance' }).waitFor();
  result.englishCards = await page.getByTestId('figures').locator('.label').allTextContents();
  await check(page, 'home-1280-en', false);
  await context.close();
} finally {
  await browser.close();
}
result.problems = problems;
console.log(JSON.stringify(result));

