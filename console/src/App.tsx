import { lazy, Suspense, useCallback, useEffect, useState, type MouseEvent as ReactMouseEvent } from 'react';
import { languages, preferredLanguage, translator, type Language, type Translate } from './i18n';
import { currentSession, signOut, type Session } from './session';
import { SignIn } from './SignIn';
import { Home } from './Home';
import { Campaigns } from './Campaigns';
import { Approvals } from './Approvals';
import { CampaignForm } from './CampaignForm';
import { Commissions } from './Commissions';

// The pages, by path under /console/ (the function app answers every such path with the app: docs/console.md). A route
// is a page and the path's parameters (a campaign's id; what follows commissions/).
export type Route =
  | { page: 'home' } | { page: 'campaigns' } | { page: 'approvals' }
  | { page: 'campaign-new' } | { page: 'campaign'; id: string } | { page: 'campaign-edit'; id: string }
  | { page: 'commissions'; rest: string };
export function routeOf(pathname: string): Route {
  const parts = pathname.replace(/^\/console\/?/, '').replace(/\/$/, '').split('/').map(decodeURIComponent);
  if (parts[0] === 'campaigns' && parts.length === 1) return { page: 'campaigns' };
  if (parts[0] === 'campaigns' && parts[1] === 'new' && parts.length === 2) return { page: 'campaign-new' };
  if (parts[0] === 'campaigns' && parts.length === 2) return { page: 'campaign', id: parts[1] };
  if (parts[0] === 'campaigns' && parts[2] === 'edit' && parts.length === 3) return { page: 'campaign-edit', id: parts[1] };
  if (parts[0] === 'approvals' && parts.length === 1) return { page: 'approvals' };
  if (parts[0] === 'commissions') return { page: 'commissions', rest: parts.slice(1).join('/') };
  return { page: 'home' };
}
// The top navigation: each entry's address, and which routes it is the current section for.
const sections = [
  { key: 'home', href: '/console/', pages: ['home'] },
  { key: 'campaigns', href: '/console/campaigns', pages: ['campaigns', 'campaign', 'campaign-new', 'campaign-edit'] },
  { key: 'approvals', href: '/console/approvals', pages: ['approvals'] },
  { key: 'commissions', href: '/console/commissions', pages: ['commissions'] },
] as const;

// The campaign detail page carries the charts (Chart.js): loaded when first opened, so the first page stays small
// (the budget in docs/console.md).
const CampaignDetail = lazy(() => import('./CampaignDetail').then((m) => ({ default: m.CampaignDetail })));

export function App() {
  const [language, setLanguage] = useState<Language>(preferredLanguage);
  const [session, setSession] = useState<Session | null>(currentSession);
  const [route, setRoute] = useState<Route>(() => routeOf(location.pathname));
  const t = translator(language);

  useEffect(() => {
    const back = () => setRoute(routeOf(location.pathname));
    addEventListener('popstate', back);
    return () => removeEventListener('popstate', back);
  }, []);

  // In-app navigation: no reload, the address names the page (bookmarks and the back button work); focus moves to the
  // main region so a screen reader starts reading the new page. Pages get `navigate` for their own links and for going
  // somewhere after an action (a created campaign's page).
  const navigate = useCallback((href: string) => {
    history.pushState(null, '', href);
    setRoute(routeOf(new URL(href, location.href).pathname));
    document.getElementById('main')?.focus();
  }, []);
  const follow = (href: string) => (event: ReactMouseEvent) => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    event.preventDefault();
    navigate(href);
  };
  const unauthorized = useCallback(() => { signOut(); setSession(null); }, []);

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
          {sections.map((s) => (
            <a key={s.key} href={s.href} aria-current={(s.pages as readonly string[]).includes(route.page) ? 'page' : undefined}
              onClick={follow(s.href)}>{t(s.key)}</a>
          ))}
        </nav>
      )}
      <main id="main" tabIndex={-1}>
        {!session ? <SignIn t={t} onSignedIn={setSession} /> : (
          <Suspense fallback={<p role="status">{t('loading')}</p>}>
            <Page route={route} props={{ session, t, locale: language, onUnauthorized: unauthorized, navigate }} />
          </Suspense>
        )}
      </main>
    </>
  );
}

// What every page gets: who is signed in, the words, the language, what to do on a 401, and in-app navigation.
export type PageProps = {
  session: Session; t: Translate; locale: Language; onUnauthorized: () => void; navigate: (href: string) => void;
};

function Page({ route, props }: { route: Route; props: PageProps }) {
  switch (route.page) {
    case 'campaigns': return <Campaigns {...props} />;
    case 'campaign-new': return <CampaignForm {...props} />;
    case 'campaign': return <CampaignDetail {...props} id={route.id} />;
    case 'campaign-edit': return <CampaignForm {...props} id={route.id} />;
    case 'approvals': return <Approvals {...props} />;
    case 'commissions': return <Commissions {...props} rest={route.rest} />;
    default: return <Home {...props} />;
  }
}
