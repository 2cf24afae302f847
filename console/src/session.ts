// Who is signed in, and the bearer token every /api call carries. The token lives in sessionStorage (gone with the
// tab), never in localStorage or a cookie. Two ways to get one, behind this one seam:
// - locally: POST /api/dev/sign-in mints a dev token (the function exists only in Development);
// - in Azure: Entra ID with MSAL (authorization code + PKCE) for the API's app registration. Not built yet
//   (docs/console.md, "What is next"): it would implement signIn/token here and nothing else changes.
export interface Session {
  token: string;
  sub: string;
  role: string;
  expiresAt: string;
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

export function signOut(): void {
  sessionStorage.removeItem(key);
}

export class ApiError extends Error {
  constructor(public readonly status: number, message: string) {
    super(message);
  }
}

// RFC 9457 problem+json: the title, and the detail when there is one.
async function problemText(response: Response): Promise<string> {
  try {
    const problem = (await response.json()) as { title?: string; detail?: string; errors?: Record<string, string[]> };
    // Field errors (validation-failed) all at once, each with the field it is about.
    const fields = Object.entries(problem.errors ?? {}).map(([field, messages]) => `${field}: ${messages.join(' ')}`);
    return [problem.title, problem.detail, ...fields].filter(Boolean).join(' ') || `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status}`;
  }
}

export async function getJson<T>(session: Session, path: string, signal?: AbortSignal): Promise<T> {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${session.token}` }, signal });
  if (!response.ok) throw new ApiError(response.status, await problemText(response));
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
  if (!response.ok) throw new ApiError(response.status, await problemText(response));
  return (await response.json()) as T;
}
