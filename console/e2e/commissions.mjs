// Drives the commissions pages in a real browser (Debian's chromium through playwright-core). As an operator: the rules in
// force and their versions, a new version refused with its field errors inline and then saved, a payout batch run from
// the form and shown with its lines, the quarantined order events of a day. As finance: the batch in the list, its page,
// the CSV link, and the CSV downloaded by following it (to Blob storage: Azurite in the test). axe-core, the 375 px width,
// the browser's console and a screenshot on each page. Called by ConsoleBrowserTests, which sets the data up over the API
// and checks what this prints: one JSON line at the end.
// Usage: node console/e2e/commissions.mjs BASE_URL OUTPUT_DIR BATCH_ID QUARANTINE_DAY OPERATOR_SUB FINANCE_SUB
import { checker, launchChromium, signIn } from './lib.mjs';
import { mkdirSync, readFileSync } from 'node:fs';

const [base, out, batchId, quarantineDay, operator, finance] = process.argv.slice(2);
if (!finance) { console.error('usage: node commissions.mjs BASE_URL OUTPUT_DIR BATCH_ID QUARANTINE_DAY OPERATOR_SUB FINANCE_SUB'); process.exit(2); }
mkdirSync(out, { recursive: true });

const browser = await launchChromium();
const problems = [];
const result = { axe: {}, screenshots: [], overflowsAt375: {}, expectedRefusals: 0 };
const check = checker(result, out);
try {
  const context = await browser.newContext({ viewport: { width: 375, height: 812 }, locale: 'zh-CN', acceptDownloads: true });
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e}`));
  // The one refusal this walk provokes (the rules form's 400) is expected; any other error in the console is a problem.
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (/status of 400/.test(m.text()) && m.location().url.endsWith('/api/commission-rules')) result.expectedRefusals++;
    else problems.push(`console error: ${m.text()} (${m.location().url})`);
  });

  // The operator, straight to the commissions pages: the rules first.
  await page.goto(new URL('/console/commissions', base).href);
  await signIn(page, operator, 'operator');
  await page.getByRole('heading', { level: 1, name: '佣金' }).waitFor();
  await page.getByTestId('in-force').waitFor();
  result.tabs = await page.getByRole('navigation', { name: '佣金' }).getByRole('link').allTextContents();
  result.inForce = await facts(page.getByTestId('in-force'));
  result.versionsBefore = await page.locator('[data-testid=versions] tbody tr').count();
  await check(page, 'commissions-rules-375');

  // A version the API refuses: level 1 over 10,000 bp and a category over it too, both errors shown at once, each under
  // its own field.
  await page.getByLabel('一级默认费率（bp）').fill('10001');
  await page.getByLabel('一级分类费率').fill('books=20000');
  await page.getByRole('button', { name: '保存版本' }).click();
  await page.locator('#rule-level1-errors').waitFor();
  result.level1Errors = await page.locator('#rule-level1-errors li').allTextContents();
  result.categoryErrors = await page.locator('#rule-categories1-errors li').allTextContents();
  result.level1Invalid = await page.getByLabel('一级默认费率（bp）').getAttribute('aria-invalid');
  result.refusal = await page.getByRole('alert').filter({ hasText: '操作未完成' }).textContent();
  await check(page, 'commissions-rule-errors-375');
  // Corrected: saved, and listed.
  await page.getByLabel('一级默认费率（bp）').fill('1200');
  await page.getByLabel('一级分类费率').fill('books=500');
  await page.getByRole('button', { name: '保存版本' }).click();
  await page.getByTestId('rule-status').filter({ hasText: '已保存' }).waitFor();
  result.level1ErrorsAfter = await page.locator('#rule-level1-errors').count();
  result.versionsAfter = await page.locator('[data-testid=versions] tbody tr').count();

  // Payout batches: run one from the form; the batch's page shows it completed with its lines.
  await page.getByRole('navigation', { name: '佣金' }).getByRole('link', { name: '结算批次' }).click();
  await page.getByRole('heading', { level: 2, name: '结算批次' }).waitFor();
  await page.getByLabel('批次 ID').fill(batchId);
  await page.getByLabel('最低余额（CNY）').fill('1.00');
  await page.getByRole('button', { name: '发起结算' }).click();
  await page.getByRole('heading', { level: 2, name: `结算批次 ${batchId}` }).waitFor();
  result.batchUrl = new URL(page.url()).pathname;
  await page.getByTestId('batch').waitFor();
  result.batchFacts = await facts(page.getByTestId('batch'));
  result.lineRows = await rows(page, 'lines');
  result.operatorCsvButtons = await page.getByRole('button', { name: '获取 CSV 下载链接' }).count();
  await check(page, 'commissions-batch-375');

  // The quarantined events of the day the test delivered them.
  await page.getByRole('navigation', { name: '佣金' }).getByRole('link', { name: '隔离的订单事件' }).click();
  await page.getByRole('heading', { level: 2, name: '隔离的订单事件' }).waitFor();
  await page.getByRole('status').filter({ hasText: /隔离/ }).waitFor();
  result.defaultDay = await page.getByLabel('日期（UTC）').inputValue();
  await page.getByLabel('日期（UTC）').fill(quarantineDay);
  await page.getByTestId('quarantined').waitFor();
  result.quarantined = await page.locator('[data-testid=quarantined] > li').evaluateAll((items) => items.map((li) => ({
    reason: li.querySelector('h3').textContent,
    facts: [...li.querySelectorAll('dt')].map((dt) => [dt.textContent, dt.nextElementSibling.textContent]),
    body: li.querySelector('pre').textContent,
    markup: li.querySelectorAll('pre *').length,
  })));
  await check(page, 'commissions-quarantine-375');

  // Finance: only the payout batches (no tabs), the batch in the list, its page and its CSV.
  await page.getByRole('button', { name: '退出登录' }).click();
  await page.goto(new URL('/console/commissions', base).href);
  await signIn(page, finance, 'finance');
  await page.getByTestId('batches').waitFor();
  result.financeTabs = await page.getByRole('navigation', { name: '佣金' }).count();
  result.financeRunForms = await page.getByRole('button', { name: '发起结算' }).count();
  result.financeBatches = await page.locator('[data-testid=batches] > li').evaluateAll((items) => items.map((li) => ({
    id: li.querySelector('h3').textContent,
    facts: [...li.querySelectorAll('dt')].map((dt) => [dt.textContent, dt.nextElementSibling.textContent]),
  })));
  await check(page, 'commissions-payouts-finance-375');
  await page.getByTestId('batches').getByRole('link', { name: batchId }).click();
  await page.getByTestId('lines').waitFor();
  await page.getByRole('button', { name: '获取 CSV 下载链接' }).click();
  const link = page.getByTestId('csv-download');
  await link.waitFor();
  result.csvLinkText = await link.textContent();
  result.csvHref = await link.getAttribute('href');
  await check(page, 'commissions-csv-375');
  // Followed as a plain link: the browser downloads the file from Blob storage.
  const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
  result.csvFileName = download.suggestedFilename();
  result.csv = readFileSync(await download.path(), 'utf8');

  // On a desktop in English: the batch's page.
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.getByLabel('语言').selectOption('en');
  await page.getByRole('heading', { level: 2, name: `Payout batch ${batchId}` }).waitFor();
  result.englishFacts = await facts(page.getByTestId('batch'));
  await check(page, 'commissions-batch-1280-en', false);
  await context.close();
} finally {
  await browser.close();
}
result.problems = problems;
console.log(JSON.stringify(result));

function facts(locator) {
  return locator.locator('dl').first().evaluate((dl) => [...dl.querySelectorAll('dt')].map((dt) => [dt.textContent, dt.nextElementSibling.textContent]));
}

function rows(page, testId) {
  return page.locator(`[data-testid=${testId}] tbody tr`).evaluateAll((trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent)));
}

