import { useCallback, useEffect, useState } from 'react';
import type { Language, Translate } from './i18n';
import { failedRead, getJson, hasRole, type Session } from './session';
import { count, duration, instant, money } from './format';

// GET /api/stats/overview (functions/Marketing.Functions/Stats/StatsOverview.cs, docs/stats.md "Overview").
interface DayTotals { claims: number; redemptions: number; gmv: number; discount: number }
interface CampaignBrief { id: string; name: string; claimEndsAt: string; budgetTotal?: number | null; budgetLeft?: number | null }
interface Overview {
  timeZone: string;
  computedAt: string | null;
  asOf: string | null;
  lagSeconds: number | null;
  campaignsRunning: number;
  endingWithin7Days: number;
  ending: CampaignBrief[];
  budgetBelow5Percent: number;
  lowBudget: CampaignBrief[];
  couponsExpiringWithin24Hours: number;
  today: DayTotals;
  yesterday: DayTotals;
  // What waits in the approvers' queues, counted when the overview was computed (computedAt).
  approvalsWaiting?: { campaigns: number; topUps: number; payouts: number } | null;
}

// The overview sums money over all campaigns without naming a currency: the platform runs in one (docs/console.md,
// "Limits"). Campaign pages will format with each campaign's own currency.
const platformCurrency = 'CNY';

type Props = { session: Session; t: Translate; locale: Language; onUnauthorized: () => void; navigate: (href: string) => void };

// Who may open the approvals queue (GET /api/approvals: approver, finance, admin); an operator sees the counts only.
const decides = ['approver', 'finance', 'admin'];

export function Home({ session, t, locale, onUnauthorized, navigate }: Props) {
  const [overview, setOverview] = useState<Overview | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback((signal?: AbortSignal) => {
    setError(null);
    getJson<Overview>(session, '/api/stats/overview', signal)
      .then(setOverview)
      .catch(failedRead(signal, onUnauthorized, setError));
  }, [session, onUnauthorized]);

  useEffect(() => {
    const abort = new AbortController();
    load(abort.signal);
    return () => abort.abort();
  }, [load]);

  const zone = overview?.timeZone ?? 'UTC';
  const cards: [string, number][] = overview ? [
    [t('running'), overview.campaignsRunning],
    [t('ending7'), overview.endingWithin7Days],
    [t('lowBudget'), overview.budgetBelow5Percent],
    [t('expiring24'), overview.couponsExpiringWithin24Hours],
  ] : [];
  const rows: [string, (d: DayTotals) => string][] = [
    [t('claims'), (d) => count(d.claims, locale)],
    [t('redemptions'), (d) => count(d.redemptions, locale)],
    [t('gmv'), (d) => money(d.gmv, platformCurrency, locale)],
    [t('discount'), (d) => money(d.discount, platformCurrency, locale)],
  ];

  return (
    <div className="home" aria-busy={!overview && !error}>
      <h1>{t('home')}</h1>
      {error && (
        <div role="alert" className="error">
          <p>{t('loadFailed', { detail: error })}</p>
          <button type="button" onClick={() => load()}>{t('retry')}</button>
        </div>
      )}
      {!overview && !error && <p role="status">{t('loading')}</p>}
      {overview && (
        <>
          <p className="as-of" data-testid="as-of">
            {overview.asOf
              ? t('asOf', { time: instant(overview.asOf, zone, locale), lag: duration(overview.lagSeconds ?? 0, locale), zone })
              : t('notComputed')}
          </p>
          <ul className="cards" aria-label={t('home')} data-testid="figures">
            {cards.map(([label, value]) => (
              <li key={label} className="card">
                <span className="label">{label}</span>
                <strong className="value">{count(value, locale)}</strong>
              </li>
            ))}
          </ul>
          <section aria-labelledby="today-title">
            <h2 id="today-title">{t('todayVsYesterday')}</h2>
            <div className="scroll">
              <table>
                <thead>
                  <tr><th scope="col">{t('figure')}</th><th scope="col">{t('today')}</th><th scope="col">{t('yesterday')}</th></tr>
                </thead>
                <tbody>
                  {rows.map(([label, show]) => (
                    <tr key={label}><th scope="row">{label}</th><td>{show(overview.today)}</td><td>{show(overview.yesterday)}</td></tr>
                  ))}
                </tbody>
              </table>
            </div>
          </section>
          {overview.approvalsWaiting && (
            <section aria-labelledby="todo-title" data-testid="todo">
              <h2 id="todo-title">{t('home_todo')}</h2>
              {overview.computedAt && <p className="as-of">{t('home_todoAsOf', { time: instant(overview.computedAt, zone, locale), zone })}</p>}
              <ul className="cards">
                {([['home_waitingCampaigns', overview.approvalsWaiting.campaigns], ['home_waitingTopUps', overview.approvalsWaiting.topUps],
                  ['home_waitingPayouts', overview.approvalsWaiting.payouts]] as const).map(([key, value]) => (
                  <li key={key} className="card">
                    <span className="label">{t(key)}</span>
                    <strong className="value">{count(value, locale)}</strong>
                  </li>
                ))}
              </ul>
              {hasRole(session, ...decides) && (
                <p>
                  <a href="/console/approvals" onClick={(e) => {
                    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
                    e.preventDefault();
                    navigate('/console/approvals');
                  }}>{t('home_openApprovals')}</a>
                </p>
              )}
            </section>
          )}
          <CampaignList title={t('endingSoon')} id="ending" total={overview.endingWithin7Days} campaigns={overview.ending}
            t={t} extra={[t('claimEndsAt'), (c) => instant(c.claimEndsAt, zone, locale)]} />
          <CampaignList title={t('lowOnBudget')} id="low-budget" total={overview.budgetBelow5Percent} campaigns={overview.lowBudget}
            t={t} extra={[t('budgetLeft'), (c) => `${money(c.budgetLeft ?? 0, platformCurrency, locale)} / ${money(c.budgetTotal ?? 0, platformCurrency, locale)}`]} />
        </>
      )}
    </div>
  );
}

function CampaignList({ title, id, total, campaigns, t, extra }: {
  title: string; id: string; total: number; campaigns: CampaignBrief[]; t: Translate; extra: [string, (c: CampaignBrief) => string];
}) {
  return (
    <section aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>{title}</h2>
      {campaigns.length === 0 ? <p>{t('none')}</p> : (
        <div className="scroll">
          <table>
            <thead><tr><th scope="col">{t('campaign')}</th><th scope="col">{extra[0]}</th></tr></thead>
            <tbody>
              {campaigns.map((c) => <tr key={c.id}><th scope="row">{c.name} <code>{c.id}</code></th><td>{extra[1](c)}</td></tr>)}
            </tbody>
          </table>
          {total > campaigns.length && <p>{t('andMore', { count: total - campaigns.length })}</p>}
        </div>
      )}
    </section>
  );
}
