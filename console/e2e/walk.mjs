// The full walk in a real browser (Debian's chromium through playwright-core), from a campaign that operator A
// made and submitted (console/e2e/create.mjs makes it through the form; until it is spliced in, ConsoleBrowserTests makes
// it over the API). Two phases, because the C# test acts in between (claims, a redemption, AggregateStats):
//   approve-publish: approver B approves it in the approval queue; operator A opens the campaign's page and publishes it
//                    there; a campaign whose claim window is over is refused on its page, the problem shown inline.
//   figures:         operator A sees the figures on the campaign's charts (their numbers read from the tables under them),
//                    uploads a banner (a PNG the test made) and sees it ready in the gallery; an admin sees the audit
//                    trail; then the page on a desktop in English. The detail page's own JavaScript is measured here.
// axe-core, the 375 px width and a screenshot on every page; the browser's console must stay free of errors.
//                    Last, the admin returns another submitted campaign for changes on its page (a decision there).
// Usage: node console/e2e/walk.mjs BASE_URL OUTPUT_DIR approve-publish CAMPAIGN_ID CAMPAIGN_NAME MAKER APPROVER LATE_CAMPAIGN_ID
//        node console/e2e/walk.mjs BASE_URL OUTPUT_DIR figures CAMPAIGN_ID CAMPAIGN_NAME MAKER ADMIN PNG_PATH RETURN_CAMPAIGN_ID
import { checker, launchChromium, signIn } from './lib.mjs';
import { mkdirSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const [base, out, phase, campaignId, campaignName, maker, other, extra, returnId] = process.argv.slice(2);
if (!extra || !['approve-publish', 'figures'].includes(phase) || (phase === 'figures' && !returnId)) {
  console.error('usage: node walk.mjs BASE_URL OUTPUT_DIR approve-publish|figures CAMPAIGN_ID CAMPAIGN_NAME MAKER APPROVER|ADMIN LATE_CAMPAIGN_ID|PNG_PATH [RETURN_CAMPAIGN_ID]');
  process.exit(2);
}
mkdirSync(out, { recursive: true });
const detailUrl = (id) => new URL(`/console/campaigns/${encodeURIComponent(id)}`, base).href;

const browser = await launchChromium();
const problems = [];
const result = { phase, axe: {}, screenshots: [], overflowsAt375: {} };
const check = checker(result, out);
try {
  const context = await browser.newContext({ viewport: { width: 375, height: 812 }, locale: 'zh-CN' });
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e}`));
  // The one refusal this walk provokes (publishing a campaign whose claim window is over) is a 409 the browser logs as a
  // failed resource; it is expected, and shown on the page. Anything else is a problem.
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (phase === 'approve-publish' && /status of 409/.test(m.text()) && result.lateExpected) return;
    problems.push(`console error: ${m.text()}`);
  });
  if (phase === 'approve-publish') await approveAndPublish(page, extra);
  else await figures(page, extra);
  await context.close();
} finally {
  await browser.close();
}
result.problems = problems;
console.log(JSON.stringify(result));

async function approveAndPublish(page, lateId) {
  // Approver B: the queue, the campaign in it, approved.
  await page.goto(new URL('/console/approvals', base).href);
  await signIn(page, other, 'approver');
  await page.getByRole('heading', { level: 1, name: '审批' }).waitFor();
  const item = page.getByRole('listitem').filter({ has: page.getByRole('heading', { name: campaignName }) });
  await item.waitFor();
  await check(page, 'walk-queue-375');
  await item.getByRole('button', { name: '通过' }).click();
  await page.getByTestId('decided').filter({ hasText: campaignName }).waitFor();
  result.decided = await page.getByTestId('decided').textContent();

  // Operator A: the campaign's page, approved; publish it there.
  await page.getByRole('button', { name: '退出登录' }).click();
  await page.goto(detailUrl(campaignId));
  await signIn(page, maker, 'operator');
  await page.getByRole('heading', { level: 1, name: campaignName }).waitFor();
  result.statusBefore = await page.getByTestId('status').textContent();
  result.actionsBefore = await page.locator('.actions > *').allTextContents();
  result.terms = await page.getByTestId('terms').locator('div').evaluateAll((rows) => rows.map((r) => [r.querySelector('dt').textContent, r.querySelector('dd').textContent]));
  await page.getByTestId('stats').waitFor();
  await check(page, 'walk-detail-approved-375');
  await page.getByRole('button', { name: '发布', exact: true }).click();
  await page.getByTestId('action-done').filter({ hasText: '已发布' }).waitFor();
  result.published = await page.getByTestId('action-done').textContent();
  result.statusAfter = await page.getByTestId('status').textContent();
  result.actionsAfter = await page.locator('.actions > *').allTextContents();
  await check(page, 'walk-detail-published-375');

  // A campaign approved too late: its claim window is over, so publishing is refused, and the page says why.
  await page.goto(detailUrl(lateId));
  await page.getByRole('heading', { level: 1 }).waitFor();
  await page.getByTestId('status').filter({ hasText: '已通过' }).waitFor();
  result.lateExpected = true;
  await page.getByRole('button', { name: '发布', exact: true }).click();
  await page.getByTestId('action-refused').waitFor();
  result.lateRefusal = await page.getByTestId('action-refused').textContent();
  result.lateStatus = await page.getByTestId('status').textContent();
  await check(page, 'walk-refused-375');
}

async function figures(page, png) {
  // The detail page's own JavaScript, as shipped: the scripts a fresh load of the page fetches, gzipped as a server would.
  const scripts = new Map();
  page.on('response', (r) => {
    if (r.request().resourceType() === 'script') scripts.set(new URL(r.url()).pathname, r.body().then((b) => gzipSync(b, { level: 9 }).length));
  });
  await page.goto(detailUrl(campaignId));
  await signIn(page, maker, 'operator');
  await page.getByRole('heading', { level: 1, name: campaignName }).waitFor();
  await page.getByTestId('stats').waitFor();
  const sizes = Object.fromEntries(await Promise.all([...scripts].map(async ([path, size]) => [path, await size])));
  result.detailJsGzipBytes = Object.entries(sizes).filter(([p]) => /CampaignDetail-/.test(p)).reduce((a, [, s]) => a + s, 0);
  result.firstPageJsGzipBytes = Object.entries(sizes).filter(([p]) => /\/index-/.test(p)).reduce((a, [, s]) => a + s, 0);
  result.scripts = Object.keys(sizes);

  // The charts' numbers: each table under a chart, its rows as [day, raw values...] (cells carry the raw value).
  for (const chart of ['daily-counts', 'daily-money', 'burn']) {
    result[chart] = await page.getByTestId(`chart-${chart}`).locator('tbody tr').evaluateAll((rows) =>
      rows.map((tr) => [tr.dataset.day, ...[...tr.querySelectorAll('td')].map((td) => td.dataset.value)]));
  }
  result.chartCanvases = await page.locator('canvas[role=img]').count();
  result.budget = await facts(page, 'budget');
  result.outcome = await facts(page, 'outcome');
  result.funnel = await page.getByTestId('funnel').locator('tbody tr').evaluateAll((rows) =>
    rows.map((tr) => [tr.dataset.step, ...[...tr.querySelectorAll('td')].map((td) => td.dataset.value)]));
  result.statsAsOf = await page.getByTestId('stats-as-of').textContent();
  result.gmvText = await page.getByTestId('outcome').locator('dd').nth(1).textContent();
  // Open the numbers of the daily charts for the screenshot.
  await page.getByTestId('stats').locator('details summary').first().click();
  await check(page, 'walk-figures-375');

  // Upload a banner: announced, PUT straight to storage, completed; ready in the gallery with its thumbnail shown.
  await page.getByLabel('类型', { exact: true }).selectOption('banner');
  await page.getByLabel('文件').setInputFiles(png);
  await page.getByRole('button', { name: '上传', exact: true }).click();
  await page.getByTestId('media-outcome').filter({ hasText: '已上传' }).waitFor();
  result.mediaOutcome = await page.getByTestId('media-outcome').textContent();
  const ready = page.getByTestId('media').locator('li[data-state=ready]').first();
  await ready.waitFor();
  await ready.locator('img').evaluate((img) => img.complete && img.naturalWidth > 0 ? null : new Promise((done, fail) => { img.onload = done; img.onerror = () => fail(new Error(`no image at ${img.src}`)); }));
  result.media = await page.getByTestId('media').locator('li').evaluateAll((items) => items.map((li) => ({
    id: li.dataset.mediaId, state: li.dataset.state, imageWidth: li.querySelector('img')?.naturalWidth ?? 0, src: li.querySelector('img')?.src ?? null,
  })));
  await check(page, 'walk-media-375');

  // An admin (not a maker): the audit trail of the campaign, its budget and its media.
  await page.getByRole('button', { name: '退出登录' }).click();
  await signIn(page, other, 'admin');
  await page.getByRole('heading', { level: 1, name: campaignName }).waitFor();
  await page.getByTestId('audit').locator('li[data-action=complete-upload]').waitFor();
  result.audit = await page.getByTestId('audit').locator('li').evaluateAll((items) => items.map((li) => [li.dataset.kind, li.dataset.action, li.dataset.outcome]));
  result.auditText = await page.getByTestId('audit').locator('li').first().textContent();
  await check(page, 'walk-audit-375');

  // On a desktop, in English.
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.getByLabel('语言').selectOption('en');
  await page.getByRole('heading', { name: 'Figures' }).waitFor();
  await page.getByRole('heading', { name: 'Audit trail' }).waitFor();
  result.englishSections = await page.getByRole('heading', { level: 2 }).allTextContents();
  result.headings = await page.getByRole('heading', { level: 1 }).allTextContents();
  await check(page, 'walk-detail-1280-en', false);

  // The admin decides another submitted campaign on its page: returned for changes, with comments; it is a draft again.
  await page.goto(detailUrl(returnId));
  await page.getByTestId('status').filter({ hasText: 'In review' }).waitFor();
  result.returnApproveEnabled = await page.getByRole('button', { name: /^Approve revision/ }).isEnabled();
  await page.getByLabel('Comments for the makers').fill('Name the categories, please.');
  await page.getByRole('button', { name: 'Return for changes' }).click();
  await page.getByTestId('status').filter({ hasText: 'Draft' }).waitFor();
  result.returned = await page.getByTestId('action-done').textContent();
  result.returnedReview = await page.getByTestId('terms').locator('div').filter({ hasText: 'Returned for changes' }).locator('dd').textContent();
  await check(page, 'walk-returned-1280-en', false);
}

async function facts(page, testId) {
  return page.getByTestId(testId).locator('div').evaluateAll((rows) => rows.map((r) => [r.querySelector('dt').textContent, r.querySelector('dd').dataset.value]));
}

