// Who is signed in, and the bearer token every /api call carries. The token lives in sessionStorage (gone with the
// tab), never in localStorage or a cookie. Two ways to get one, behind this one seam, as GET /api/console/config says:
// - locally: POST /api/dev/sign-in mints a dev token (the function exists only in Development);
// - in Azure: Entra ID with MSAL (authorization code + PKCE, redirect flow) for the API's app registration. MSAL is loaded
//   with a dynamic import only then, so a local run (and the first page's script budget) never carries it.
export interface Session {
  token: string;
  sub: string;
  /** The role shown and used when one is needed (the first console role the user has). */
  role: string;
  /** Every role of the token (Entra may assign several); absent on a local session, which has `role` only. */
  roles?: string[];
  expiresAt: string;
}

/** Whether the signed-in user has any of `roles` (a local session has its one role). */
export function hasRole(session: Session, ...roles: string[]): boolean {
  return (session.roles ?? [session.role]).some((r) => roles.includes(r));
}

/** GET /api/console/config: public settings the console needs before and after sign-in. */
export interface ConsoleConfig {
  localSignIn: boolean;
  /** Left out when the API takes no Entra ID tokens. */
  entra?: { clientId: string; authority: string; scopes: string[] } | null;
  /** Commissions and payouts are in this currency (Commissions__Currency). */
  currency: string;
  /** The platform's time zone (Stats__TimeZone). */
  timeZone: string;
}

let config: Promise<ConsoleConfig> | null = null;
export function consoleConfig(): Promise<ConsoleConfig> {
  config ??= fetch('/api/console/config').then(async (response) => {
    if (!response.ok) throw new ApiError(response.status, await problemText(response));
    return (await response.json()) as ConsoleConfig;
  });
  // A failed read is not kept: the next page asks again.
  config.catch(() => { config = null; });
  return config;
}

const key = 'console.session';

export function currentSession(): Session | null {
  const stored = sessionStorage.getItem(key);
  if (!stored) return null;
  const session = JSON.parse(stored) as Session;
  return new Date(session.expiresAt) > new Date() ? session : null;
}

export async function signInLocally(sub: string, role: string): Promise<Session> {
  const response = await fetch('/api/dev/sign-in', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ sub, role }),
  });
  if (!response.ok) throw new ApiError(response.status, await problemText(response));
  const body = (await response.json()) as { token: string; expiresAt: string };
  const session: Session = { token: body.token, expiresAt: body.expiresAt, sub, role };
  sessionStorage.setItem(key, JSON.stringify(session));
  return session;
}

// The sign-out's clearing of MSAL's cache, which the sign-in page waits for before it offers the button again.
let clearing: Promise<void> = Promise.resolve();

export function signOut(): void {
  sessionStorage.removeItem(key);
  // With Entra ID, MSAL's cache in this tab goes too (the account, its tokens, the refresh token): left there, the next
  // load of the tab would sign the same person in again silently, though they signed out (or the API refused the token).
  // Only when MSAL is in use: a local run never loads it.
  clearing = consoleConfig()
    .then(async (c) => { if (c.entra) await (await msal(c.entra)).clearCache(); })
    .catch(() => { /* nothing cached to clear: the config (so MSAL) never loaded */ });
}

// The roles the console has pages for, in the order one is picked as the session's `role`.
const consoleRoles = ['admin', 'operator', 'finance', 'approver'];

type Entra = NonNullable<ConsoleConfig['entra']>;

async function msal(entra: Entra) {
  const { PublicClientApplication } = await import('@azure/msal-browser');
  const app = new PublicClientApplication({
    auth: {
      clientId: entra.clientId,
      authority: entra.authority,
      // The console's base address: the SPA redirect URI registered on the client (docs/deploy.md).
      redirectUri: new URL('/console/', location.origin).href,
      // The configured tenant's host is trusted as it is (no instance discovery against another host).
      knownAuthorities: [new URL(entra.authority).host],
    },
    // MSAL's cache (its refresh token included) lives as long as the tab, like the session.
    cache: { cacheLocation: 'sessionStorage' },
  });
  await app.initialize();
  return app;
}

/** Sends the browser to the authority's sign-in page (authorization code + PKCE); it comes back to /console/. */
export async function signInWithEntra(entra: Entra): Promise<void> {
  const app = await msal(entra);
  await app.loginRedirect({ scopes: entra.scopes });
}

/**
 * After the authority redirected back: the code is redeemed (MSAL, with the PKCE verifier it kept) for an access token to
 * the API. Without a redirect to complete, and when `silently` is set, a token from MSAL's cache for an account already
 * signed in in this tab. Null when there is none.
 */
export async function completeEntraSignIn(entra: Entra, silently: boolean): Promise<Session | null> {
  await clearing;
  const app = await msal(entra);
  const result = await app.handleRedirectPromise();
  if (result) return remember(sessionOf(result.accessToken));
  const account = app.getAllAccounts()[0];
  if (!silently || !account) return null;
  try {
    // The cached access token, else the refresh token redeemed at the token endpoint (connect-src allows the authority).
    // Never MSAL's default last resort, a hidden iframe to the authority: the console's CSP allows no frames (frame-src
    // falls back to 'self'), so the iframe would be blocked and MSAL would wait out its timeout before failing anyway.
    const { CacheLookupPolicy } = await import('@azure/msal-browser');
    const silent = { scopes: entra.scopes, account, cacheLookupPolicy: CacheLookupPolicy.AccessTokenAndRefreshToken };
    return remember(sessionOf((await app.acquireTokenSilent(silent)).accessToken));
  } catch {
    return null; // the account needs to sign in again (interaction required): the button does that
  }
}

// Who the API will take the caller to be: the access token's own sub (Entra's is pairwise per registration, so the ID
// token's may differ) and roles (app roles), as Identity/Auth.cs reads them. The payload is read, not verified: the API
// verifies every token; this only labels the page.
function sessionOf(accessToken: string): Session {
  const part = accessToken.split('.')[1] ?? '';
  const json = new TextDecoder().decode(Uint8Array.from(atob(part.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0)));
  const claims = JSON.parse(json) as { sub?: string; roles?: string[]; exp?: number };
  const roles = claims.roles ?? [];
  return {
    token: accessToken,
    sub: claims.sub ?? '',
    role: consoleRoles.find((r) => roles.includes(r)) ?? roles[0] ?? '',
    roles,
    expiresAt: new Date((claims.exp ?? 0) * 1000).toISOString(),
  };
}

function remember(session: Session): Session {
  sessionStorage.setItem(key, JSON.stringify(session));
  return session;
}

/** An RFC 9457 problem+json answer, as far as the console reads it. */
export interface Problem { type?: string; title?: string; detail?: string; errors?: Record<string, string[]> }

export class ApiError extends Error {
  /** The problem+json body, when the answer had one: a form shows its field errors next to the fields. */
  public problem?: Problem;
  constructor(public readonly status: number, message: string, problem?: Problem) {
    super(message);
    this.problem = problem;
  }
}

// RFC 9457 problem+json: the title, and the detail when there is one.
async function problemText(response: Response): Promise<string> {
  return textOf(await problemOf(response), response.status);
}

async function problemOf(response: Response): Promise<Problem | undefined> {
  try {
    return (await response.json()) as Problem;
  } catch {
    return undefined;
  }
}

function textOf(problem: Problem | undefined, status: number): string {
  // Field errors (validation-failed) all at once, each with the field it is about.
  const fields = Object.entries(problem?.errors ?? {}).map(([field, messages]) => `${field}: ${messages.join(' ')}`);
  return [problem?.title, problem?.detail, ...fields].filter(Boolean).join(' ') || `HTTP ${status}`;
}

/** Throws the answer's problem as an ApiError (its text, and the problem for field errors). */
export async function failure(response: Response): Promise<never> {
  const problem = await problemOf(response);
  throw new ApiError(response.status, textOf(problem, response.status), problem);
}

/**
 * A command whose answer the page reads itself (not always JSON: a payout answers CSV): the response, or an ApiError with
 * the problem for anything but 2xx.
 */
export async function send(session: Session, method: string, path: string, body?: unknown): Promise<Response> {
  const response = await fetch(path, {
    method,
    headers: { Authorization: `Bearer ${session.token}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) await failure(response);
  return response;
}

/**
 * What a page does when a read fails: nothing when the page cancelled it (it was left or reloaded), sign out on a 401,
 * else show the problem's words.
 */
export function failedRead(signal: AbortSignal | undefined, onUnauthorized: () => void, show: (message: string) => void) {
  return (e: unknown) => {
    if (signal?.aborted) return;
    if (e instanceof ApiError && e.status === 401) onUnauthorized();
    else show((e as Error).message);
  };
}

export async function getJson<T>(session: Session, path: string, signal?: AbortSignal): Promise<T> {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${session.token}` }, signal });
  if (!response.ok) await failure(response);
  return (await response.json()) as T;
}

// A decision or another command: POST with a JSON body; a problem+json answer becomes an ApiError with its words, which
// the page shows next to what was tried.
export async function postJson<T>(session: Session, path: string, body: unknown): Promise<T> {
  const response = await fetch(path, {
    method: 'POST',
    headers: { Authorization: `Bearer ${session.token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!response.ok) await failure(response);
  return (await response.json()) as T;
}
