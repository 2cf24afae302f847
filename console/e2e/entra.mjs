// The console's Entra ID sign-in (MSAL, authorization code + PKCE) in a real browser, with nothing leaving the machine:
// the app runs with Entra settings whose authority is a made-up https host, and every request to that host is answered
// here (page.route) as the tenant would: its OpenID Connect discovery document, the sign-in page (which sends the browser
// back to the console with a code, as Entra does once the user has signed in), and the token endpoint (which checks the
// PKCE verifier against the challenge before it answers with ACCESS_TOKEN, a real token the test minted with the
// stand-in tenant the app trusts, and an ID token for MSAL). Requests to the authority pass the page's CSP only if the
// app allows its origin. Called by ConsoleEntraBrowserTests; prints one JSON line at the end.
// Usage: node console/e2e/entra.mjs BASE_URL OUTPUT_DIR AUTHORITY TENANT_ID ACCESS_TOKEN
import { checker, launchChromium } from './lib.mjs';
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';

const [base, out, authority, tenantId, accessToken] = process.argv.slice(2);
if (!accessToken) { console.error('usage: node entra.mjs BASE_URL OUTPUT_DIR AUTHORITY TENANT_ID ACCESS_TOKEN'); process.exit(2); }
mkdirSync(out, { recursive: true });
const origin = new URL(authority).origin;
const tenantBase = authority.replace(/\/v2\.0\/?$/, '');

const browser = await launchChromium();
const problems = [];
const result = { axe: {}, screenshots: [], overflowsAt375: {}, authorityRequests: [], cspViolations: [] };
const check = checker(result, out);
let authorize = null;
let codeChallenge = null;
let nonce = null;
try {
  const context = await browser.newContext({ viewport: { width: 375, height: 812 }, locale: 'zh-CN' });
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()} (${m.location().url})`); });
  await page.exposeFunction('reportCsp', (v) => result.cspViolations.push(v));
  await page.addInitScript(() => document.addEventListener('securitypolicyviolation', (e) => window.reportCsp(`${e.violatedDirective} ${e.blockedURI}`)));

  await context.route(`${origin}/**`, async (route) => {
    const request = route.request();
    const url = new URL(request.url());
    result.authorityRequests.push(`${request.method()} ${url.pathname}`);
    const cors = { 'Access-Control-Allow-Origin': new URL(base).origin, 'Access-Control-Allow-Headers': '*', 'Access-Control-Allow-Methods': 'GET, POST' };
    if (request.method() === 'OPTIONS') return route.fulfill({ status: 204, headers: cors });
    if (url.pathname.endsWith('/.well-known/openid-configuration')) {
      return route.fulfill({ status: 200, headers: cors, contentType: 'application/json', body: JSON.stringify({
        issuer: `${tenantBase}/v2.0`,
        authorization_endpoint: `${tenantBase}/oauth2/v2.0/authorize`,
        token_endpoint: `${tenantBase}/oauth2/v2.0/token`,
        end_session_endpoint: `${tenantBase}/oauth2/v2.0/logout`,
        jwks_uri: `${tenantBase}/discovery/v2.0/keys`,
        response_types_supported: ['code'], response_modes_supported: ['query', 'fragment'],
        scopes_supported: ['openid', 'profile', 'offline_access'], code_challenge_methods_supported: ['S256'],
        id_token_signing_alg_values_supported: ['RS256'], subject_types_supported: ['pairwise'],
      }) });
    }
    if (url.pathname.endsWith('/oauth2/v2.0/authorize')) {
      // The user signs in (not simulated) and the tenant sends the browser back to the redirect URI with a code.
      authorize = Object.fromEntries(url.searchParams);
      codeChallenge = authorize.code_challenge;
      nonce = authorize.nonce;
      const back = new URL(authorize.redirect_uri);
      const answer = new URLSearchParams({ code: 'code-from-the-tenant', state: authorize.state, client_info: clientInfo() });
      const target = authorize.response_mode === 'query' ? `${back.origin}${back.pathname}?${answer}` : `${back.href}#${answer}`;
      return route.fulfill({ status: 302, headers: { Location: target } });
    }
    if (url.pathname.endsWith('/oauth2/v2.0/token')) {
      const form = new URLSearchParams(request.postData() ?? '');
      result.tokenRequest = {
        grant_type: form.get('grant_type'), client_id: form.get('client_id'), redirect_uri: form.get('redirect_uri'),
        code: form.get('code'), scope: form.get('scope'), has_secret: form.has('client_secret'),
        // PKCE: the verifier sent now hashes to the challenge sent with the sign-in request.
        verifierMatches: !!form.get('code_verifier') && createHash('sha256').update(form.get('code_verifier')).digest('base64url') === codeChallenge,
      };
      const now = Math.floor(Date.now() / 1000);
      const clientId = form.get('client_id');
      const idToken = jwt({ aud: clientId, iss: `${tenantBase}/v2.0`, tid: tenantId, oid: 'oid-1', sub: 'id-token-subject', nonce,
        preferred_username: 'olivia@contoso.example', name: 'Olivia', iat: now, nbf: now, exp: now + 3600, ver: '2.0' });
      return route.fulfill({ status: 200, headers: cors, contentType: 'application/json', body: JSON.stringify({
        token_type: 'Bearer', scope: authorize.scope.split(' ').filter((s) => s.startsWith('api://')).join(' '),
        expires_in: 3600, ext_expires_in: 3600, access_token: accessToken, id_token: idToken, client_info: clientInfo(),
      }) });
    }
    return route.fulfill({ status: 404, headers: cors, body: 'not part of this tenant' });
  });

  await page.goto(new URL('/console/', base).href);
  const button = page.getByRole('button', { name: '使用 Microsoft 账号登录' });
  await button.waitFor();
  await page.waitForFunction(() => !document.querySelector('main button')?.disabled);
  result.localSignIn = await page.getByRole('heading', { name: '本地登录' }).count();
  result.headings = await page.getByRole('heading', { level: 1 }).allTextContents();
  await check(page, 'sign-in-entra-375');

  // The click leaves for the tenant, which sends the browser back; the console then holds the API's token, which the API
  // accepts: the home page's figures load.
  await button.click();
  await page.getByRole('button', { name: '退出登录' }).waitFor();
  await page.getByTestId('figures').waitFor();
  result.authorize = authorize;
  result.signedInAs = await page.locator('.who span').textContent();
  result.session = await page.evaluate(() => JSON.parse(sessionStorage.getItem('console.session')));
  result.finalUrl = page.url();

  // A new visit of the tab once MSAL holds no token it can use (here: its cached access token removed, and the tenant gave
  // no refresh token): the console asks MSAL silently, which must fail at once to the sign-in button, never try MSAL's
  // hidden iframe to the authority (the CSP allows no frames: it would be blocked, and MSAL would wait out its timeout).
  const [requestsBefore, cspBefore] = [result.authorityRequests.length, result.cspViolations.length];
  await page.evaluate(() => {
    for (const k of Object.keys(sessionStorage)) if (k === 'console.session' || k.toLowerCase().includes('accesstoken')) sessionStorage.removeItem(k);
  });
  await page.reload();
  await page.getByRole('button', { name: '使用 Microsoft 账号登录' }).waitFor();
  // Enabled again: the silent attempt is over.
  await page.waitForFunction(() => !document.querySelector('main button')?.disabled);
  result.silentRequests = result.authorityRequests.slice(requestsBefore);
  result.silentCspViolations = result.cspViolations.splice(cspBefore);

  // Signed in again with the button, then signed out: a reload of the tab must not sign the same person back in from
  // MSAL's cache (its account and tokens live in this tab's sessionStorage): sign-out clears it.
  await page.getByRole('button', { name: '使用 Microsoft 账号登录' }).click();
  await page.getByRole('button', { name: '退出登录' }).click();
  await page.getByRole('button', { name: '使用 Microsoft 账号登录' }).waitFor();
  // Enabled once the sign-out is complete (MSAL's cache cleared).
  await page.waitForFunction(() => !document.querySelector('main button')?.disabled);
  await page.reload();
  // Whichever comes first: the signed-in header, or the sign-in button enabled once the silent attempt is over.
  await page.waitForFunction(() => document.querySelector('.who') || (document.querySelector('main button') && !document.querySelector('main button').disabled));
  result.signedInAfterSignOutAndReload = await page.locator('.who').count() > 0;
  await context.close();
} finally {
  await browser.close();
}
result.problems = problems;
console.log(JSON.stringify(result));

function jwt(claims) {
  const part = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ typ: 'JWT', alg: 'RS256', kid: 'test' })}.${part(claims)}.${Buffer.from('not-checked-by-the-browser').toString('base64url')}`;
}

function clientInfo() {
  return Buffer.from(JSON.stringify({ uid: 'oid-1', utid: tenantId })).toString('base64url');
}

