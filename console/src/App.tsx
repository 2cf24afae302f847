import { useEffect, useState } from 'react';
import { languages, preferredLanguage, translator, type Language } from './i18n';
import { currentSession, signOut, type Session } from './session';
import { SignIn } from './SignIn';
import { Home } from './Home';

export function App() {
  const [language, setLanguage] = useState<Language>(preferredLanguage);
  const [session, setSession] = useState<Session | null>(currentSession);
  const t = translator(language);

  useEffect(() => {
    document.documentElement.lang = language;
    document.title = t('appTitle');
  }, [language, t]);

  const choose = (next: Language) => {
    sessionStorage.setItem('console.language', next);
    setLanguage(next);
  };

  return (
    <>
      <a className="skip" href="#main">{t('skipToContent')}</a>
      <header className="bar">
        <p className="brand">{t('appTitle')}</p>
        <label className="language">
          {t('language')}{' '}
          <select value={language} onChange={(e) => choose(e.target.value as Language)}>
            {Object.entries(languages).map(([code, { name }]) => (
              <option key={code} value={code} lang={code}>{name}</option>
            ))}
          </select>
        </label>
        {session && (
          <div className="who">
            <span>{t('signedInAs', { sub: session.sub, role: session.role })}</span>{' '}
            <button type="button" onClick={() => { signOut(); setSession(null); }}>{t('signOut')}</button>
          </div>
        )}
      </header>
      {session && (
        <nav aria-label={t('navigation')}>
          <a href="/console/" aria-current="page">{t('home')}</a>
        </nav>
      )}
      <main id="main" tabIndex={-1}>
        {session ? <Home session={session} t={t} locale={language} onUnauthorized={() => { signOut(); setSession(null); }} />
          : <SignIn t={t} onSignedIn={setSession} />}
      </main>
    </>
  );
}
