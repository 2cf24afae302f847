// Drives the campaigns list and the approval queue in a real browser (Debian's chromium through playwright-core), after
// home.mjs: an operator sees the draft in the campaigns list (status filter); the campaign's own maker, signed in as an
// approver, finds the decision buttons disabled (four eyes); another approver sees the submitted campaign with its diff,
// approves it and sees it leave the queue. axe-core and a screenshot on each page. Called by ConsoleBrowserTests, which
// creates the campaigns over the API first and checks what this prints: one JSON line at the end.
// Usage: node console/e2e/pages.mjs BASE_URL OUTPUT_DIR DRAFT_NAME SUBMITTED_NAME MAKER_SUB APPROVER_SUB
import { checker, launchChromium, signIn } from './lib.mjs';
import { mkdirSync } from 'node:fs';

const [base, out, draftName, submittedName, maker, approver] = process.argv.slice(2);
if (!approver) { console.error('usage: node pages.mjs BASE_URL OUTPUT_DIR DRAFT_NAME SUBMITTED_NAME MAKER_SUB APPROVER_SUB'); process.exit(2); }
mkdirSync(out, { recursive: true });

const browser = await launchChromium();
const problems = [];
const result = { axe: {}, screenshots: [], overflowsAt375: {} };
const check = checker(result, out);
try {
  const context = await browser.newContext({ viewport: { width: 375, height: 812 }, locale: 'zh-CN' });
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e}`));
  // A refused decision would be a 4xx in the console; none is expected on this walk.
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });

  // The operator: home, then the campaigns list through the navigation, filtered to drafts.
  await page.goto(new URL('/console/', base).href);
  await signIn(page, 'ops-browser', 'operator');
  await page.getByTestId('figures').waitFor();
  await page.getByRole('navigation').getByRole('link', { name: '活动' }).click();
  await page.getByRole('heading', { level: 1, name: '活动' }).waitFor();
  result.campaignsUrl = new URL(page.url()).pathname;
  await page.getByTestId('campaigns').waitFor();
  result.allNames = await names(page);
  await page.getByLabel('状态').selectOption('draft');
  await page.getByTestId('campaigns').getByRole('heading', { name: draftName }).waitFor();
  await page.waitForFunction((n) => ![...document.querySelectorAll('[data-testid=campaigns] h2')].some((h) => h.textContent === n), submittedName);
  result.draftNames = await names(page);
  result.draftStatuses = await page.locator('[data-testid=campaigns] dd.status').allTextContents();
  await check(page, 'campaigns-375');

  // The maker, as an approver: the queue shows their campaign, the buttons disabled with the reason.
  // (Signed out first and opened by its address: an operator may not read the queue, and its 403 would be a console error.)
  await page.getByRole('button', { name: '退出登录' }).click();
  await page.goto(new URL('/console/approvals', base).href);
  await signIn(page, maker, 'approver');
  await page.getByRole('heading', { level: 1, name: '审批' }).waitFor();
  const ownItem = page.getByRole('listitem').filter({ has: page.getByRole('heading', { name: submittedName }) });
  await ownItem.waitFor();
  result.ownApproveDisabled = await ownItem.getByRole('button', { name: '通过' }).isDisabled();
  result.ownNote = await ownItem.locator('.note').textContent();
  await check(page, 'approvals-own-375');

  // Another approver: the diff, then approve; the campaign leaves the queue.
  await page.getByRole('button', { name: '退出登录' }).click();
  await signIn(page, approver, 'approver');
  const item = page.getByRole('listitem').filter({ has: page.getByRole('heading', { name: submittedName }) });
  await item.waitFor();
  result.queueTitles = await page.locator('[data-testid=approvals] > li h2').allTextContents();
  result.diff = await item.locator('tbody tr').evaluateAll((rows) => rows.map((tr) => [...tr.children].map((c) => c.textContent)));
  result.facts = await item.locator('dl').evaluate((dl) => [...dl.querySelectorAll('dt')].map((dt) => [dt.textContent, dt.nextElementSibling.textContent]));
  await check(page, 'approvals-375');
  await item.getByRole('button', { name: '通过' }).click();
  await page.getByTestId('decided').filter({ hasText: submittedName }).waitFor();
  result.decided = await page.getByTestId('decided').textContent();
  result.queueTitlesAfter = await page.locator('[data-testid=approvals] > li h2').allTextContents();
  // Reloaded from the API, not only removed from the page.
  await page.reload();
  await page.getByRole('heading', { level: 1, name: '审批' }).waitFor();
  await page.getByText(/待审批/).first().waitFor();
  result.queueTitlesReloaded = await page.locator('[data-testid=approvals] > li h2').allTextContents();
  await check(page, 'approvals-after-375');

  // On a desktop in English: the campaigns list, as an operator again.
  await page.getByRole('button', { name: '退出登录' }).click();
  await page.goto(new URL('/console/campaigns', base).href);
  await signIn(page, 'ops-browser', 'operator');
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.getByLabel('语言').selectOption('en');
  await page.getByRole('navigation').getByRole('link', { name: 'Campaigns' }).click();
  await page.getByRole('heading', { level: 1, name: 'Campaigns' }).waitFor();
  await page.getByTestId('campaigns').waitFor();
  result.englishStatuses = await page.locator('[data-testid=campaigns] dd.status').allTextContents();
  await check(page, 'campaigns-1280-en', false);
  await context.close();
} finally {
  await browser.close();
}
result.problems = problems;
console.log(JSON.stringify(result));

function names(page) {
  return page.locator('[data-testid=campaigns] h2').allTextContents();
}

