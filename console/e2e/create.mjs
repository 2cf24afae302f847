// Creates a campaign through the console's form in a real browser (Debian's chromium through playwright-core), the first
// steps of the walk: an operator opens the campaigns list (and its budget burn bars), clicks "New campaign",
// saves the form with an empty name and a claim end before its start, sees the API's field errors inline (and focus on
// the first), fixes them and saves: the campaign's page opens (its id in the address). Then the edit form: rename, save;
// then submit for approval. Finally the form on a desktop in English. axe-core and a screenshot on each page.
// Self-contained (the integrator chains it in front of the full walk). Called by ConsoleBrowserTests, which checks what
// it prints over the API: one JSON line at the end, {campaignId, ...}.
// Usage: node console/e2e/create.mjs BASE_URL OUTPUT_DIR OPERATOR_SUB CAMPAIGN_NAME
import { checker, launchChromium, signIn } from './lib.mjs';
import { mkdirSync } from 'node:fs';

const [base, out, operator, campaignName] = process.argv.slice(2);
if (!campaignName) { console.error('usage: node create.mjs BASE_URL OUTPUT_DIR OPERATOR_SUB CAMPAIGN_NAME'); process.exit(2); }
mkdirSync(out, { recursive: true });

const browser = await launchChromium();
const problems = [];
const result = { axe: {}, screenshots: [], overflowsAt375: {}, saves: [] };
const check = checker(result, out);
// The refused save answers 400 on purpose, which Chromium logs as a console error: that one is expected, no other.
let expectRefusal = false;
try {
  const context = await browser.newContext({ viewport: { width: 375, height: 812 }, locale: 'zh-CN' });
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (expectRefusal && /status of 400/.test(m.text())) return;
    problems.push(`console error: ${m.text()}`);
  });
  page.on('response', (r) => {
    const url = new URL(r.url());
    if (url.pathname.startsWith('/api/campaigns') && ['POST', 'PUT'].includes(r.request().method()))
      result.saves.push(`${r.request().method()} ${url.pathname} ${r.status()}`);
  });

  // The campaigns list: its burn bars, then "New campaign".
  await page.goto(new URL('/console/campaigns', base).href);
  await signIn(page, operator, 'operator');
  await page.getByRole('heading', { level: 1, name: '活动' }).waitFor();
  await page.getByTestId('campaigns').waitFor();
  result.burns = await page.locator('[data-testid=campaigns] > li').evaluateAll((items) => items
    .filter((li) => li.querySelector('meter'))
    .map((li) => {
      const meter = li.querySelector('meter');
      return {
        name: li.querySelector('h2').textContent,
        value: meter.value, max: meter.max, label: document.getElementById(meter.getAttribute('aria-labelledby'))?.textContent,
        valueText: meter.getAttribute('aria-valuetext'), text: li.querySelector('[data-testid=burn-text]').textContent,
        left: li.querySelector('[data-testid=burn-left]').textContent, asOf: li.querySelector('.burn .as-of')?.textContent ?? null,
      };
    }));
  // The name filter: a piece of the first budgeted campaign's name, in upper case, finds it (the API matches any case).
  if (result.burns.length > 0) {
    const piece = result.burns[0].name.slice(-8).toUpperCase();
    result.namesBeforeSearch = await page.locator('[data-testid=campaigns] h2').allTextContents();
    await page.getByLabel('名称包含').fill(piece);
    await page.getByRole('button', { name: '搜索' }).click();
    await page.waitForFunction((n) => [...document.querySelectorAll('[data-testid=campaigns] h2')].map((h) => h.textContent).join('|') === n,
      result.burns[0].name);
    result.searched = { piece, names: await page.locator('[data-testid=campaigns] h2').allTextContents() };
  }
  await check(page, 'campaigns-burn-375');
  await page.getByRole('link', { name: '新建活动' }).click();
  await page.getByRole('heading', { level: 1, name: '新建活动' }).waitFor();
  result.newUrl = new URL(page.url()).pathname;

  // Saved with an empty name and claiming ending a day before it starts.
  // Claiming from today's local midnight (already begun), so the rest of the walk can claim coupons at once; the
  // form's default is the next midnight.
  const today = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date());
  const start = `${today}T00:00`;
  await page.getByLabel('开始领取').fill(start);
  const before = new Date(Date.parse(`${start}:00Z`) - 86_400_000).toISOString().slice(0, 16);
  await page.getByLabel('立减金额（CNY）').fill('20');
  await page.getByLabel('最低消费（CNY，0 = 无门槛）').fill('100');
  await page.getByLabel('结束领取').fill(before);
  await page.getByLabel('发放总量').fill('100');
  await page.getByLabel('预算（CNY，可选：优惠总额上限）').fill('1000');
  expectRefusal = true;
  await page.getByRole('button', { name: '保存' }).click();
  await page.getByTestId('error-summary').waitFor();
  // Focus moves to the first invalid field once the errors are shown.
  await page.waitForFunction(() => document.activeElement?.id === 'f-name');
  expectRefusal = false;
  result.focused = await page.evaluate(() => document.activeElement?.id);
  result.inline = await page.locator('.field-error').evaluateAll((spans) => spans.map((s) => [s.id, s.textContent]));
  result.invalid = await page.locator('[aria-invalid=true]').evaluateAll((inputs) => inputs.map((i) => [i.id, i.getAttribute('aria-describedby')]));
  result.summary = await page.getByTestId('error-summary').locator('li').allTextContents();
  result.summaryLinks = await page.getByTestId('error-summary').locator('a').evaluateAll((links) => links.map((a) => a.getAttribute('href')));
  result.urlAfterRefusal = new URL(page.url()).pathname;
  await check(page, 'new-campaign-errors-375');

  // Fixed: a name, claiming ending 30 days after it starts. Saved: the campaign's page.
  await page.getByLabel('名称', { exact: true }).fill(campaignName);
  await page.getByLabel('结束领取').fill(new Date(Date.parse(`${start}:00Z`) + 30 * 86_400_000).toISOString().slice(0, 16));
  await page.getByRole('button', { name: '保存' }).click();
  await page.waitForURL(/\/console\/campaigns\/cmp_[^/]+$/);
  result.campaignUrl = new URL(page.url()).pathname;
  result.campaignId = decodeURIComponent(result.campaignUrl.split('/').pop());

  // The edit form, opened by its address, in this tab and in a second one (its own sign-in: the session is per tab).
  const editUrl = new URL(`/console/campaigns/${encodeURIComponent(result.campaignId)}/edit`, base).href;
  await page.goto(editUrl);
  await page.getByRole('heading', { level: 1, name: '编辑活动' }).waitFor();
  result.loadedName = await page.getByLabel('名称', { exact: true }).inputValue();
  result.loadedStart = await page.getByLabel('开始领取').inputValue();
  const other = await context.newPage();
  other.on('pageerror', (e) => problems.push(`page error (second tab): ${e}`));
  // Its save is refused with 412 on purpose (Chromium logs it as a console error): that one is expected, no other.
  other.on('console', (m) => { if (m.type() === 'error' && !/status of 412/.test(m.text())) problems.push(`console error (second tab): ${m.text()}`); });
  other.on('response', (r) => {
    const url = new URL(r.url());
    if (url.pathname.startsWith('/api/campaigns') && r.request().method() === 'PUT') result.saves.push(`PUT ${url.pathname} ${r.status()} (second tab)`);
  });
  await other.goto(editUrl);
  await signIn(other, operator, 'operator');
  await other.getByRole('heading', { level: 1, name: '编辑活动' }).waitFor();
  await other.getByLabel('名称', { exact: true }).waitFor();

  // This tab renames and saves.
  result.editedName = `${campaignName} (2)`;
  await page.getByLabel('名称', { exact: true }).fill(result.editedName);
  await page.getByRole('button', { name: '保存' }).click();
  await page.getByTestId('form-status').filter({ hasText: '已保存' }).waitFor();
  result.saved = await page.getByTestId('form-status').textContent();
  await check(page, 'campaign-edit-375');

  // The second tab, still on the first revision, saves a change of its own: refused (If-Match), said so, and reloading
  // shows the rename; nothing of its change was written.
  await other.getByLabel('发放总量').fill('200');
  await other.getByRole('button', { name: '保存' }).click();
  await other.getByTestId('form-alert').waitFor();
  result.conflict = await other.getByTestId('form-alert').locator('p').textContent();
  await check(other, 'campaign-conflict-375');
  await other.getByRole('button', { name: '重新加载活动' }).click();
  await other.waitForFunction((name) => document.getElementById('f-name')?.value === name, result.editedName);
  result.reloadedQuantity = await other.getByLabel('发放总量').inputValue();
  await other.close();

  // Submitted for approval from the same page.
  await page.getByRole('button', { name: '提交审批' }).click();
  await page.getByTestId('form-status').filter({ hasText: '已提交审批' }).waitFor();
  result.submitted = await page.getByTestId('form-status').textContent();
  result.saveDisabledAfterSubmit = await page.getByRole('button', { name: '保存' }).isDisabled();
  await check(page, 'campaign-submitted-375');

  // The new-campaign form on a desktop, in English, for a campaign in Europe/Berlin across daylight saving: 02:30 on
  // 28 March 2027 does not exist there (the clocks skip from 02:00 to 03:00), so the form refuses it without asking the
  // API; 02:30 on 31 October happens twice (the clocks go back at 03:00), and the earlier instant is sent.
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.getByLabel('语言').selectOption('en');
  await page.goto(new URL('/console/campaigns/new', base).href);
  await page.getByRole('heading', { level: 1, name: 'New campaign' }).waitFor();
  result.englishLegends = await page.locator('form legend').allTextContents();
  await page.getByLabel('Name', { exact: true }).fill(`${campaignName} (Berlin)`);
  await page.getByLabel('Amount off (CNY)').fill('5');
  await page.getByLabel('Total quantity').fill('10');
  await page.getByLabel('Time zone (the campaign runs by it)').selectOption('Europe/Berlin');
  await page.getByLabel('Claiming starts').fill('2027-03-28T02:30');
  await page.getByLabel('Claiming ends').fill('2027-11-30T00:00');
  const savesBefore = result.saves.length;
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByTestId('error-summary').waitFor();
  result.skippedTime = await page.locator('#f-claimStartsAt-error').textContent();
  result.skippedSentNothing = result.saves.length === savesBefore;
  await check(page, 'new-campaign-1280-en', false);
  await page.getByLabel('Claiming starts').fill('2027-10-31T02:30');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.waitForURL(/\/console\/campaigns\/cmp_[^/]+$/);
  result.berlinCampaignId = decodeURIComponent(new URL(page.url()).pathname.split('/').pop());
  await context.close();
} finally {
  await browser.close();
}
result.problems = problems;
console.log(JSON.stringify(result));

