import { useCallback, useEffect, useState } from 'react';
import type { Key } from './i18n';
import type { CampaignView, DetailProps } from './CampaignDetail';
import type { DetailTranslate } from './words/detail';
import { ApiError, getJson, hasRole } from './session';
import { instant } from './format';

// GET /api/audit?target={kind}/{id} (Audit/ListAuditEntries.cs, docs/audit.md): approvers and admins only. A campaign's
// trail is three kinds of target: the campaign itself, its budget (same id) and each of its media items
// ("media/{campaignId}/{mediaId}", one partition each); the page reads the campaign's and the budget's newest entries and
// those of its newest media items, and shows them together, newest first.
interface AuditEntry {
  id: string; target: string; kind: string; targetId: string; action: string;
  actor: { sub: string; roles: string[] }; occurredAt: string; state: string; outcome?: string | null; status?: number | null;
  problemType?: string | null; reason?: string | null; changes?: { path: string }[] | null;
}
interface AuditPage { items: AuditEntry[]; continuationToken: string | null }

const pageSize = 50;
// Media items whose trails are read (one query each): the newest, as the gallery lists them.
const mediaTrails = 20;

export function DetailAudit({ session, t, locale, onUnauthorized, campaign, version }: DetailProps & { campaign: CampaignView; version: number }) {
  const [entries, setEntries] = useState<AuditEntry[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const reads = hasRole(session, 'approver', 'admin');

  const load = useCallback(async (signal?: AbortSignal) => {
    setError(null);
    try {
      const id = campaign.id;
      // The media ids come from the gallery's list (operators and admins read it; an approver sees the campaign's own trail).
      const media = hasRole(session, 'admin')
        ? (await getJson<{ items: { mediaId: string }[] }>(session, `/api/campaigns/${encodeURIComponent(id)}/media`, signal)).items.slice(0, mediaTrails)
        : [];
      const targets = [`campaign/${id}`, `budget/${id}`, ...media.map((m) => `media/${id}/${m.mediaId}`)];
      const pages = await Promise.all(targets.map((target) =>
        getJson<AuditPage>(session, `/api/audit?${new URLSearchParams({ target, limit: String(pageSize) })}`, signal)));
      setEntries(pages.flatMap((p) => p.items).sort((a, b) => b.occurredAt.localeCompare(a.occurredAt)));
    } catch (e) {
      if (signal?.aborted) return;
      if (e instanceof ApiError && e.status === 401) onUnauthorized();
      else setError((e as Error).message);
    }
  }, [session, campaign.id, onUnauthorized]);

  useEffect(() => {
    if (!reads) return;
    const abort = new AbortController();
    load(abort.signal);
    return () => abort.abort();
  }, [load, reads, version]);

  const zone = campaign.terms.timeZone;
  return (
    <section aria-labelledby="audit-title" className="panel">
      <h2 id="audit-title">{t('detail_audit')}</h2>
      {!reads && <p>{t('detail_auditRoles')}</p>}
      {error && (
        <div role="alert" className="error">
          <p>{t('loadFailed', { detail: error })}</p>
          <button type="button" onClick={() => load()}>{t('retry')}</button>
        </div>
      )}
      {reads && !entries && !error && <p>{t('loading')}</p>}
      {entries && entries.length === 0 && <p>{t('detail_noAudit')}</p>}
      {entries && entries.length > 0 && (
        <ol className="audit" data-testid="audit">
          {entries.map((e) => (
            <li key={e.id} data-action={e.action} data-kind={e.kind} data-outcome={e.outcome ?? e.state}>
              <p className="audit-head">
                <strong>{t(`detail_kind_of_${e.kind}` as Key)} · {actionWord(t, e.action)}</strong>{' '}
                <span className={`outcome outcome-${e.outcome ?? e.state}`}>{outcomeWord(t, e)}</span>
              </p>
              <p className="meta">
                {e.actor.sub} ({e.actor.roles.join(', ')}) · <time dateTime={e.occurredAt}>{instant(e.occurredAt, zone, locale)}</time>
              </p>
              {e.reason && <p>{t('detail_auditReason', { reason: e.reason })}</p>}
              {e.changes && e.changes.length > 0 && (
                <p className="changes">{e.changes.some((c) => c.path === '$')
                  ? t('detail_auditWhole') // the diff's root: the target came or went whole (a create, a delete)
                  : t('detail_auditChanged', { fields: e.changes.slice(0, 8).map((c) => c.path).join(', ') + (e.changes.length > 8 ? ' …' : '') })}</p>
              )}
            </li>
          ))}
        </ol>
      )}
      {entries && <p className="meta">{t('detail_auditZone', { zone })}</p>}
    </section>
  );
}

// Actions with words of their own; any other (a new audited route) is shown as the API names it.
const knownActions = ['create', 'update', 'submit', 'approve', 'reject', 'return', 'publish', 'pause', 'resume', 'end', 'top-up',
  'start-upload', 'complete-upload', 'delete'];
function actionWord(t: DetailTranslate, action: string) {
  return knownActions.includes(action) ? t(`detail_audit_${action.replace(/-/g, '_')}` as Key) : action;
}
function outcomeWord(t: DetailTranslate, e: AuditEntry) {
  if (e.outcome === 'refused') return t('detail_outcome_refused', { status: e.status ?? '', type: (e.problemType ?? '').replace(/^.*:/, '') });
  if (e.outcome === 'applied' || e.outcome === 'no_change') return t(`detail_outcome_${e.outcome}` as Key);
  return t('detail_outcome_intent');
}
