import { useState } from 'react';
import type { Key, Language, Translate } from './i18n';
import { ApiError, postJson, type Session } from './session';
import { usePagedList } from './paging';
import { count, instant, money } from './format';

// GET /api/approvals?status=pending (Approvals/ListApprovals.cs, docs/approvals.md): what waits for the signed-in
// role's decision, each item naming the routes that decide it (relative to /api) and who may not (makers: four eyes).
interface FieldChange { path: string; before?: unknown; after?: unknown }
interface ApprovalItem {
  kind: string;
  state: string;
  id: string;
  title: string;
  requestedBy: string;
  requestedAt: string;
  makers: string[];
  amount?: number | null;
  currency?: string | null;
  changes: FieldChange[];
  revision?: number | null;
  routes: { approve: string; reject: string; return?: string | null };
}
interface ApprovalPage { items: ApprovalItem[]; continuationToken: string | null }
type Decision = 'approve' | 'reject' | 'return';

type Props = { session: Session; t: Translate; locale: Language; onUnauthorized: () => void };

export function Approvals({ session, t, locale, onUnauthorized }: Props) {
  const { items, setItems, next, more, error } = usePagedList<ApprovalItem, ApprovalPage>(session, '/api/approvals?status=pending', onUnauthorized);
  const [done, setDone] = useState<string | null>(null);

  const decided = (item: ApprovalItem, decision: Decision) => {
    setItems((shown) => shown?.filter((i) => !(i.kind === item.kind && i.id === item.id)) ?? null);
    setDone(t('decided', { title: item.title, decision: t(`decision_${decision}` as Key) }));
  };

  return (
    <div className="approvals">
      <h1>{t('approvals')}</h1>
      {/* Announced to screen readers: the outcome of the last decision. */}
      <p role="status" data-testid="decided">{done ?? ''}</p>
      {error && <p role="alert" className="error">{t('listFailed', { detail: error })}</p>}
      {!items && !error && <p>{t('loading')}</p>}
      {items && <p>{items.length === 0 ? t('noApprovals') : t('pendingCount', { count: count(items.length, locale) })}</p>}
      {items && items.length > 0 && (
        <ul className="approval-list" data-testid="approvals">
          {items.map((item) => (
            <Item key={`${item.kind}/${item.id}`} item={item} session={session} t={t} locale={locale}
              onDecided={(d) => decided(item, d)} onUnauthorized={onUnauthorized} />
          ))}
        </ul>
      )}
      {next && <button type="button" onClick={more}>{t('loadMore')}</button>}
    </div>
  );
}

function Item({ item, session, t, locale, onDecided, onUnauthorized }: {
  item: ApprovalItem; session: Session; t: Translate; locale: Language; onDecided: (d: Decision) => void; onUnauthorized: () => void;
}) {
  const [reason, setReason] = useState('');
  const [comments, setComments] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  // Four eyes: the API refuses (403 four-eyes) whoever requested or edited it; the page says so before they try.
  const own = item.makers.includes(session.sub) || item.requestedBy === session.sub;
  const key = `${item.kind}-${item.id}`.replace(/[^A-Za-z0-9_-]/g, '-');

  const decide = async (decision: Decision) => {
    const route = decision === 'approve' ? item.routes.approve : decision === 'reject' ? item.routes.reject : item.routes.return;
    if (!route) return;
    // A campaign is approved at the revision shown, so a revision edited in between is refused, not approved unseen.
    const body = decision === 'approve' ? (item.revision != null ? { revision: item.revision } : {})
      : decision === 'reject' ? { reason } : { comments };
    setBusy(true);
    setError(null);
    try {
      await postJson(session, `/api/${route}`, body);
      onDecided(decision);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) onUnauthorized();
      else setError(t('decisionFailed', { detail: (e as Error).message }));
    } finally {
      setBusy(false);
    }
  };

  const value = (v: unknown) => (v === undefined || v === null ? '—' : typeof v === 'string' ? v : JSON.stringify(v));
  const disabled = own || busy;
  const why = own ? `${key}-own` : undefined;

  return (
    <li className="item" aria-labelledby={`${key}-title`}>
      <h2 id={`${key}-title`} className="item-title">{item.title}</h2>
      <dl>
        <dt>{t('kind')}</dt><dd>{t(`kind_${item.kind}` as Key)}</dd>
        <dt>{t('requestedBy')}</dt><dd>{item.requestedBy}</dd>
        <dt>{t('requestedAt')}</dt><dd>{instant(item.requestedAt, 'UTC', locale)}</dd>
        {item.amount != null && item.currency && <><dt>{t('amount')}</dt><dd>{money(item.amount, item.currency, locale)}</dd></>}
      </dl>
      {item.changes.length > 0 && (
        <div className="scroll">
          <table>
            <caption>{t('changes')}</caption>
            <thead><tr><th scope="col">{t('field')}</th><th scope="col">{t('before')}</th><th scope="col">{t('after')}</th></tr></thead>
            <tbody>
              {item.changes.map((c) => (
                <tr key={c.path}><th scope="row"><code>{c.path}</code></th><td>{value(c.before)}</td><td>{value(c.after)}</td></tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {own && <p id={why} className="note">{t('ownWork', { sub: session.sub })}</p>}
      <div className="decisions">
        <button type="button" disabled={disabled} aria-describedby={why} onClick={() => decide('approve')}>{t('approve')}</button>
        <div className="with-text">
          <label htmlFor={`${key}-reason`}>{t('reason')}</label>
          <input id={`${key}-reason`} value={reason} maxLength={500} disabled={own} onChange={(e) => setReason(e.target.value)} />
          <button type="button" disabled={disabled || !reason.trim()} aria-describedby={why} onClick={() => decide('reject')}>{t('reject')}</button>
        </div>
        {item.routes.return && (
          <div className="with-text">
            <label htmlFor={`${key}-comments`}>{t('comments')}</label>
            <textarea id={`${key}-comments`} value={comments} maxLength={2000} disabled={own} onChange={(e) => setComments(e.target.value)} />
            <button type="button" disabled={disabled || !comments.trim()} aria-describedby={why} onClick={() => decide('return')}>{t('returnForChanges')}</button>
          </div>
        )}
      </div>
      {error && <p role="alert" className="error">{error}</p>}
    </li>
  );
}
