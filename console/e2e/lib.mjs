// What every browser walk under console/e2e shares: Debian's chromium through playwright-core, the local sign-in, and the
// check each page gets (axe-core, sideways scrolling at 375 px, a screenshot). The walks are run by the C# browser tests
// (tests/Marketing.Tests/Support/ConsoleSite.cs), which read the JSON line each prints last.
import { chromium } from 'playwright-core';
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/** Debian's chromium (scripts/test.sh installs it; CHROMIUM=/path uses another build): Playwright never downloads one. */
export function launchChromium() {
  const executablePath = process.env.CHROMIUM || execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim();
  return chromium.launch({ executablePath, headless: true, args: ['--disable-dev-shm-usage', '--disable-gpu'] });
}

/** The local sign-in (Development only), in Chinese: the page the console shows when nobody is signed in. */
export async function signIn(page, sub, role) {
  await page.getByRole('heading', { name: '本地登录' }).waitFor();
  await page.getByLabel('用户 ID').fill(sub);
  await page.getByLabel('角色').selectOption(role);
  await page.getByRole('button', { name: '登录' }).click();
  await page.getByRole('button', { name: '退出登录' }).waitFor();
}

/**
 * The check of a page, recorded in `result` (axe, overflowsAt375, overflowing, screenshots): axe-core (WCAG 2 A and AA
 * rules, best practices) on the page as it is, whether it scrolls sideways (`narrow`: the page is at 375 px), what sticks
 * out when something does (to fix it, not to judge it), and a full-page screenshot named after it in `out`.
 */
export function checker(result, out) {
  return async function check(page, name, narrow = true) {
    // Evaluated through the DevTools protocol, which the page's CSP (script-src 'self') does not govern: injecting a
    // <script> tag would be refused, as it should be.
    await page.evaluate(axeSource);
    const report = await page.evaluate(() => window.axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] }));
    result.axe[name] = report.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help }));
    if (narrow) {
      result.overflowsAt375[name] = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
      if (result.overflowsAt375[name]) {
        result.overflowing = result.overflowing ?? {};
        result.overflowing[name] = await page.evaluate(() => [...document.querySelectorAll('main *')]
          .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5)
          .slice(0, 8).map((e) => `${e.tagName.toLowerCase()}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`));
      }
    }
    const path = join(out, `${name}.png`);
    await page.screenshot({ path, fullPage: true });
    result.screenshots.push(path);
  };
}
