import { useEffect, useRef, useState, type FormEvent } from 'react';
import type { Translate } from './i18n';
import { completeEntraSignIn, consoleConfig, signInLocally, signInWithEntra, type ConsoleConfig, type Session } from './session';

// The roles an operator console user can take (customers and the order system have no use for it).
const roles = ['operator', 'approver', 'admin', 'finance'] as const;

// Once per page load the Entra sign-in may use MSAL's cache silently (an account already signed in in this tab); after a
// sign-out or a 401 only the button signs in again, so a token the API refuses cannot loop.
let silentTried = false;

// What GET /api/console/config offers: Entra ID (Azure) and/or the local sign-in (Development). Without the config (an
// old server, a failed read) the local form is shown, as before.
export function SignIn({ t, onSignedIn }: { t: Translate; onSignedIn: (session: Session) => void }) {
  const [config, setConfig] = useState<ConsoleConfig | null>(null);
  const [configFailed, setConfigFailed] = useState(false);
  const [completing, setCompleting] = useState(false);
  const [error, setError] = useState<string | null>(null);
  // The words of the moment, without making the sign-in run again when the language changes.
  const words = useRef(t);
  words.current = t;

  useEffect(() => {
    const t = words.current;
    let live = true;
    consoleConfig().then(async (c) => {
      if (!live) return;
      setConfig(c);
      if (!c.entra) return;
      // Back from the authority (or already signed in in this tab): finish without another click.
      setCompleting(true);
      try {
        const silently = !silentTried;
        silentTried = true;
        const session = await completeEntraSignIn(c.entra, silently);
        if (!live || !session) return;
        if (!session.role) setError(t('signin_noRoles'));
        else onSignedIn(session);
      } catch (e) {
        if (live) setError(t('signInFailed', { detail: (e as Error).message }));
      } finally {
        if (live) setCompleting(false);
      }
    }, () => live && setConfigFailed(true));
    return () => { live = false; };
  }, [onSignedIn]);

  const entra = config?.entra;
  const local = configFailed || (config !== null && (config.localSignIn || !entra));
  const microsoft = async () => {
    if (!entra) return;
    setError(null);
    try {
      await signInWithEntra(entra); // leaves the page
    } catch (e) {
      setError(t('signInFailed', { detail: (e as Error).message }));
    }
  };

  return (
    <>
      {entra && (
        <section aria-labelledby="entra-title" className="sign-in">
          <h1 id="entra-title">{t('signin_title')}</h1>
          <p>{t('signin_entraHint')}</p>
          <button type="button" disabled={completing} onClick={microsoft}>{t('signin_entra')}</button>
          <p role="status">{completing ? t('signin_completing') : ''}</p>
          {error && <p role="alert" className="error">{error}</p>}
        </section>
      )}
      {local && <LocalSignIn t={t} onSignedIn={onSignedIn} heading={entra ? 2 : 1} />}
    </>
  );
}

function LocalSignIn({ t, onSignedIn, heading }: { t: Translate; onSignedIn: (session: Session) => void; heading: 1 | 2 }) {
  const [sub, setSub] = useState('ops-local');
  const [role, setRole] = useState<string>('operator');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onSignedIn(await signInLocally(sub.trim(), role));
    } catch (e) {
      setError(t('signInFailed', { detail: (e as Error).message }));
    } finally {
      setBusy(false);
    }
  };
  const Heading = heading === 1 ? 'h1' : 'h2';

  return (
    <section aria-labelledby="sign-in-title" className="sign-in">
      <Heading id="sign-in-title">{t('localSignInTitle')}</Heading>
      <p>{t('localSignInHint')}</p>
      <form onSubmit={submit}>
        <label htmlFor="sub">{t('subject')}</label>
        <input id="sub" name="sub" value={sub} required autoComplete="username" onChange={(e) => setSub(e.target.value)} />
        <label htmlFor="role">{t('role')}</label>
        <select id="role" name="role" value={role} onChange={(e) => setRole(e.target.value)}>
          {roles.map((r) => <option key={r} value={r}>{r}</option>)}
        </select>
        <button type="submit" disabled={busy}>{t('signIn')}</button>
        {error && <p role="alert" className="error">{error}</p>}
      </form>
    </section>
  );
}
