import { useState } from 'react';
import type { Key } from './i18n';
import type { PageProps } from './App';
import { hasRole } from './session';
import { usePagedList } from './paging';
import { count, instant, money } from './format';

// GET /api/campaigns?status=&limit=&continuationToken= (Campaigns/GetCampaigns.cs, docs/api.md): a page of the catalog.
// A launched campaign with a budget carries its live figures (`budget`: total, left, reserved, spent), read for the whole
// page in one query at `budgetsAsOf` (docs/decisions/0010-budget-burn-in-the-campaigns-list.md); a draft's budget is
// only what its terms plan.
interface BudgetSummary { total: number; left: number; reserved: number; spent: number }
interface CampaignItem {
  id: string;
  status: string;
  terms: { name: string; currency: string; timeZone: string; claimStartsAt: string; claimEndsAt: string; budget?: number | null };
  budget?: BudgetSummary | null;
  // When the page's budgets were read (the page's budgetsAsOf, kept per item: "load more" reads later).
  budgetsAsOf?: string | null;
}
interface CampaignPage { items: CampaignItem[]; continuationToken: string | null; budgetsAsOf?: string | null }

export const statuses = ['draft', 'submitted', 'approved', 'published', 'paused', 'ended'] as const;
// Small pages: the list is read by a person, and "load more" costs one more query only when they ask.
const pageSize = 20;

/** Each card shows its budget as of the page's reading. */
const withBudgetsAsOf = (page: CampaignPage): CampaignItem[] => page.items.map((c) => ({ ...c, budgetsAsOf: page.budgetsAsOf ?? null }));

export function Campaigns({ session, t, locale, onUnauthorized, navigate }: PageProps) {
  const [status, setStatus] = useState('');
  // The name searched for (applied on submit, not on every key), and the claim-end window of "ending within 7 days",
  // fixed when it was ticked so that "load more" continues the same list (page tokens fit their filters only).
  const [name, setName] = useState('');
  const [typed, setTyped] = useState('');
  const [ending, setEnding] = useState<{ from: string; before: string } | null>(null);
  const query = new URLSearchParams({ limit: String(pageSize) });
  if (status) query.set('status', status);
  if (name) query.set('name', name);
  if (ending) { query.set('claimEndsFrom', ending.from); query.set('claimEndsBefore', ending.before); }
  const { items, next, more, error, busy } = usePagedList<CampaignItem, CampaignPage>(session, `/api/campaigns?${query}`, onUnauthorized, withBudgetsAsOf);

  return (
    <div className="campaigns" aria-busy={busy}>
      <h1>{t('campaigns')}</h1>
      {/* Creating a campaign is for operators and admins (the API's Operator policy); others read the list only. */}
      {hasRole(session, 'operator', 'admin') && (
        <p>
          <a className="new-campaign" href="/console/campaigns/new"
            onClick={(e) => { if (e.button === 0 && !e.metaKey && !e.ctrlKey && !e.shiftKey) { e.preventDefault(); navigate('/console/campaigns/new'); } }}>
            {t('form_newCampaign')}
          </a>
        </p>
      )}
      <div className="filters">
        <label htmlFor="status-filter">{t('status')}</label>{' '}
        <select id="status-filter" value={status} onChange={(e) => setStatus(e.target.value)}>
          <option value="">{t('allStatuses')}</option>
          {statuses.map((s) => <option key={s} value={s}>{t(`status_${s}` as Key)}</option>)}
        </select>
        <label className="check">
          <input type="checkbox" checked={ending !== null} onChange={(e) => {
            const now = Date.now();
            setEnding(e.target.checked ? { from: new Date(now).toISOString(), before: new Date(now + 7 * 86_400_000).toISOString() } : null);
          }} />{t('form_endingWithin7')}
        </label>
        <form role="search" className="search" onSubmit={(e) => { e.preventDefault(); setName(typed.trim()); }}>
          <label htmlFor="name-filter">{t('form_nameFilter')}</label>
          <input id="name-filter" type="search" maxLength={100} value={typed} onChange={(e) => setTyped(e.target.value)} />
          <button type="submit">{t('form_search')}</button>
        </form>
      </div>
      {error && <p role="alert" className="error">{t('listFailed', { detail: error })}</p>}
      {!items && !error && <p role="status">{t('loading')}</p>}
      {items && items.length === 0 && <p>{t('noCampaigns')}</p>}
      {items && items.length > 0 && (
        <>
          <ul className="campaign-list" data-testid="campaigns">
            {items.map((c) => (
              <li key={c.id} className="item">
                <h2 className="item-title">
                  <a href={`/console/campaigns/${encodeURIComponent(c.id)}`}
                    onClick={(e) => { if (e.button === 0 && !e.metaKey && !e.ctrlKey && !e.shiftKey) { e.preventDefault(); navigate(`/console/campaigns/${encodeURIComponent(c.id)}`); } }}>
                    {c.terms.name}
                  </a>
                </h2>
                <dl>
                  <dt>{t('status')}</dt><dd className={`status status-${c.status}`}>{t(`status_${c.status}` as Key)}</dd>
                  <dt>{t('claimWindow', { zone: c.terms.timeZone })}</dt>
                  <dd>{instant(c.terms.claimStartsAt, c.terms.timeZone, locale)} – {instant(c.terms.claimEndsAt, c.terms.timeZone, locale)}</dd>
                  {!c.budget && <>
                    <dt>{c.terms.budget != null ? t('form_budgetPlanned') : t('budget')}</dt>
                    <dd>{c.terms.budget != null ? money(c.terms.budget, c.terms.currency, locale) : t('noBudget')}</dd>
                  </>}
                </dl>
                {c.budget && <Burn id={c.id} budget={c.budget} currency={c.terms.currency} zone={c.terms.timeZone}
                  asOf={c.budgetsAsOf ?? null} t={t} locale={locale} />}
                <code>{c.id}</code>
              </li>
            ))}
          </ul>
          <p role="status">{t('shownCount', { count: count(items.length, locale) })}</p>
        </>
      )}
      {next && <button type="button" disabled={busy} onClick={more}>{t('loadMore')}</button>}
    </div>
  );
}

// A launched campaign's budget burn: spent against total as a meter (its text equivalent in aria-valuetext and on the
// page), what is left and what open orders hold, and when the figures were read, in the campaign's own zone.
function Burn({ id, budget, currency, zone, asOf, t, locale }: {
  id: string; budget: BudgetSummary; currency: string; zone: string; asOf: string | null; t: PageProps['t']; locale: string;
}) {
  const share = budget.total > 0 ? budget.spent / budget.total : 0;
  const text = t('form_burnText', {
    spent: money(budget.spent, currency, locale), total: money(budget.total, currency, locale),
    percent: new Intl.NumberFormat(locale, { style: 'percent', maximumFractionDigits: 1 }).format(share),
  });
  const label = `burn-${id}`;
  return (
    <div className="burn" data-testid="burn">
      <span id={label} className="burn-label">{t('form_burn')}</span>
      <meter aria-labelledby={label} aria-valuetext={text} min={0} max={Math.max(budget.total, 1)} value={budget.spent}
        low={budget.total * 0.8} high={budget.total * 0.95} optimum={0} />
      <span className="burn-text" data-testid="burn-text">{text}</span>
      <dl>
        <dt>{t('form_left')}</dt><dd data-testid="burn-left">{money(budget.left, currency, locale)}</dd>
        <dt>{t('form_reserved')}</dt><dd>{money(budget.reserved, currency, locale)}</dd>
      </dl>
      {asOf && <p className="as-of">{t('form_burnAsOf', { time: instant(asOf, zone, locale), zone })}</p>}
    </div>
  );
}
