import { useEffect, useState, type MouseEvent } from 'react';
import { languages, preferredLanguage, translator, type Language } from './i18n';
import { currentSession, signOut, type Session } from './session';
import { SignIn } from './SignIn';
import { Home } from './Home';
import { Campaigns } from './Campaigns';
import { Approvals } from './Approvals';

// The pages, by path under /console/ (the function app answers every such path with the app: docs/console.md).
const pages = { '': 'home', campaigns: 'campaigns', approvals: 'approvals' } as const;
type Page = (typeof pages)[keyof typeof pages];
function pageOf(pathname: string): Page {
  const name = pathname.replace(/^\/console\/?/, '').replace(/\/$/, '');
  return name in pages ? pages[name as keyof typeof pages] : 'home';
}
const hrefOf: Record<Page, string> = { home: '/console/', campaigns: '/console/campaigns', approvals: '/console/approvals' };

export function App() {
  const [language, setLanguage] = useState<Language>(preferredLanguage);
  const [session, setSession] = useState<Session | null>(currentSession);
  const [page, setPage] = useState<Page>(() => pageOf(location.pathname));
  const t = translator(language);

  useEffect(() => {
    const back = () => setPage(pageOf(location.pathname));
    addEventListener('popstate', back);
    return () => removeEventListener('popstate', back);
  }, []);

  // In-app navigation: no reload, the address names the page (bookmarks and the back button work); focus moves to the
  // main region so a screen reader starts reading the new page.
  const go = (next: Page) => (event: MouseEvent) => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    event.preventDefault();
    history.pushState(null, '', hrefOf[next]);
    setPage(next);
    document.getElementById('main')?.focus();
  };
  const unauthorized = () => { signOut(); setSession(null); };

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
          {(['home', 'campaigns', 'approvals'] as const).map((p) => (
            <a key={p} href={hrefOf[p]} aria-current={p === page ? 'page' : undefined} onClick={go(p)}>{t(p)}</a>
          ))}
        </nav>
      )}
      <main id="main" tabIndex={-1}>
        {!session ? <SignIn t={t} onSignedIn={setSession} />
          : page === 'campaigns' ? <Campaigns session={session} t={t} locale={language} onUnauthorized={unauthorized} />
          : page === 'approvals' ? <Approvals session={session} t={t} locale={language} onUnauthorized={unauthorized} />
          : <Home session={session} t={t} locale={language} onUnauthorized={unauthorized} />}
      </main>
    </>
  );
}
