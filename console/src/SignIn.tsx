import { useState, type FormEvent } from 'react';
import type { Translate } from './i18n';
import { signInLocally, type Session } from './session';

// The roles an operator console user can take (customers and the order system have no use for it).
const roles = ['operator', 'approver', 'admin', 'finance'] as const;

export function SignIn({ t, onSignedIn }: { t: Translate; onSignedIn: (session: Session) => void }) {
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

  return (
    <section aria-labelledby="sign-in-title" className="sign-in">
      <h1 id="sign-in-title">{t('localSignInTitle')}</h1>
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
