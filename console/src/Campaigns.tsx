import { useCallback, useEffect, useState } from 'react';
import type { Key } from './i18n';
import type { PageProps } from './App';
import { ApiError, getJson } from './session';
import { count, instant, money } from './format';

// GET /api/campaigns?status=&limit=&continuationToken= (Campaigns/GetCampaigns.cs, docs/api.md): a page of the catalog.
// The list carries the terms, not the budget's live figures (reading every budget would cost a query per campaign), so
// the budget shown is the one the terms set.
interface CampaignItem {
  id: string;
  status: string;
  terms: { name: string; currency: string; timeZone: string; claimStartsAt: string; claimEndsAt: string; budget?: number | null };
}
interface CampaignPage { items: CampaignItem[]; continuationToken: string | null }

export const statuses = ['draft', 'submitted', 'approved', 'published', 'paused', 'ended'] as const;
// Small pages: the list is read by a person, and "load more" costs one more query only when they ask.
const pageSize = 20;

export function Campaigns({ session, t, locale, onUnauthorized, navigate }: PageProps) {
  const [status, setStatus] = useState('');
  const [items, setItems] = useState<CampaignItem[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const load = useCallback((token: string | null, signal?: AbortSignal) => {
    const query = new URLSearchParams({ limit: String(pageSize) });
    if (status) query.set('status', status);
    if (token) query.set('continuationToken', token);
    setBusy(true);
    setError(null);
    getJson<CampaignPage>(session, `/api/campaigns?${query}`, signal)
      .then((page) => {
        setItems((shown) => (token && shown ? [...shown, ...page.items] : page.items));
        setNext(page.continuationToken ?? null);
      })
      .catch((e: unknown) => {
        if (signal?.aborted) return;
        if (e instanceof ApiError && e.status === 401) onUnauthorized();
        else setError((e as Error).message);
      })
      .finally(() => { if (!signal?.aborted) setBusy(false); });
  }, [session, status, onUnauthorized]);

  useEffect(() => {
    const abort = new AbortController();
    setItems(null);
    load(null, abort.signal);
    return () => abort.abort();
  }, [load]);

  return (
    <div className="campaigns" aria-busy={busy}>
      <h1>{t('campaigns')}</h1>
      <div className="filters">
        <label htmlFor="status-filter">{t('status')}</label>{' '}
        <select id="status-filter" value={status} onChange={(e) => setStatus(e.target.value)}>
          <option value="">{t('allStatuses')}</option>
          {statuses.map((s) => <option key={s} value={s}>{t(`status_${s}` as Key)}</option>)}
        </select>
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
                  <dt>{t('budget')}</dt>
                  <dd>{c.terms.budget != null ? money(c.terms.budget, c.terms.currency, locale) : t('noBudget')}</dd>
                </dl>
                <code>{c.id}</code>
              </li>
            ))}
          </ul>
          <p role="status">{t('shownCount', { count: count(items.length, locale) })}</p>
        </>
      )}
      {next && <button type="button" disabled={busy} onClick={() => load(next)}>{t('loadMore')}</button>}
    </div>
  );
}
