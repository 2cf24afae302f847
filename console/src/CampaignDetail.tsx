import { useCallback, useEffect, useMemo, useState } from 'react';
import type { PageProps } from './App';
import type { Key } from './i18n';
import { ApiError, failedRead, getJson, hasRole, postJson, type Session } from './session';
import { count, instant, money } from './format';
import { DetailStats } from './DetailStats';
import { DetailMedia } from './DetailMedia';
import { DetailAudit } from './DetailAudit';
import { withDetailWords, type DetailTranslate } from './words/detail';
import './detail.css';

// What the page's sections get: the page's props, with a translator that knows the page's own words too.
export type DetailProps = Omit<PageProps, 't'> & { t: DetailTranslate };

// GET /api/campaigns/{id} (Campaigns/GetCampaigns.cs, CampaignView.cs): the terms, where the campaign is in its lifecycle
// and in review (revision, makers, submitter, approval, last review), and on a launched campaign with a budget its live
// figures.
export interface CampaignTerms {
  name: string;
  kind: string;
  amountOff?: number | null;
  percentOff?: number | null;
  maxDiscount?: number | null;
  minimumSpend: number;
  currency: string;
  categories: string[];
  newCustomersOnly: boolean;
  channels: string[];
  claimStartsAt: string;
  claimEndsAt: string;
  validity: { type: string; from?: string | null; to?: string | null; days?: number | null };
  totalQuantity: number;
  perCustomerLimit: number;
  timeZone: string;
  budget?: number | null;
  returnOnRefund: boolean;
  stockShards?: number | null;
  reminders?: { offsetsHours: number[]; holdoutPercent: number } | null;
}
export interface CampaignView {
  id: string;
  status: string;
  terms: CampaignTerms;
  createdAt: string;
  createdBy: string;
  updatedAt: string;
  updatedBy: string;
  publishedAt?: string | null;
  endedAt?: string | null;
  endReason?: string | null;
  budget?: { total: number; left: number; reserved: number; spent: number } | null;
  revision: number;
  makers: string[];
  submittedBy?: string | null;
  submittedAt?: string | null;
  approval?: { revision: number; by: string; at: string } | null;
  review?: { outcome: string; revision: number; by: string; at: string; reason: string } | null;
}

// Who may do what (Identity/Auth.cs policies): operators and admins run campaigns (and read them, their figures and
// media); approvers and admins decide them and read the audit trail.
// By any role the user has (an Entra user may have several: session.ts).
const runs = (session: Session) => hasRole(session, 'operator', 'admin');
const decides = (session: Session) => hasRole(session, 'approver', 'admin');

// The lifecycle steps an operator may take from each status (Campaigns/SubmitCampaign.cs, ChangeCampaignStatus.cs);
// the API decides, the page only offers what it would allow.
type Step = 'submit' | 'publish' | 'pause' | 'resume' | 'end';
const stepsFrom: Record<string, Step[]> = {
  draft: ['submit'], submitted: [], approved: ['publish'], published: ['pause', 'end'], paused: ['resume', 'end'], ended: [],
};
// UpdateCampaign.CheckEditable: in review or ended, the terms are frozen.
const editable = (status: string) => status !== 'submitted' && status !== 'ended';

// /console/campaigns/{id}: a campaign's terms, its lifecycle actions for the signed-in role, its figures (charts), its media
// and its audit trail (docs/console.md, "Campaign detail").
export function CampaignDetail(page: PageProps & { id: string }) {
  const t = useMemo(() => withDetailWords(page.t, page.locale), [page.t, page.locale]);
  const props: DetailProps & { id: string } = { ...page, t };
  const { session, onUnauthorized, navigate, id } = props;
  const [campaign, setCampaign] = useState<CampaignView | null>(null);
  const [error, setError] = useState<string | null>(null);
  // Changes when an action or an upload changed something the other sections show (figures, audit trail).
  const [version, setVersion] = useState(0);

  const load = useCallback((signal?: AbortSignal) => {
    setError(null);
    getJson<CampaignView>(session, `/api/campaigns/${encodeURIComponent(id)}`, signal)
      .then(setCampaign)
      .catch(failedRead(signal, onUnauthorized, setError));
  }, [session, id, onUnauthorized]);

  useEffect(() => {
    const abort = new AbortController();
    load(abort.signal);
    return () => abort.abort();
  }, [load]);

  useEffect(() => {
    if (campaign) document.title = `${campaign.terms.name} · ${t('appTitle')}`;
  }, [campaign, t]);

  if (error) {
    return (
      <div className="campaign-detail">
        <h1>{t('detail_title')}</h1>
        <div role="alert" className="error">
          <p>{t('detail_loadFailed', { detail: error })}</p>
          {/* An approver may not read campaigns (GET is for operators and admins): their decisions are in the queue. */}
          {!runs(session) && decides(session) && (
            <p><a href="/console/approvals" onClick={(e) => { e.preventDefault(); navigate('/console/approvals'); }}>{t('detail_toQueue')}</a></p>
          )}
          <button type="button" onClick={() => load()}>{t('retry')}</button>
        </div>
      </div>
    );
  }
  if (!campaign) {
    return <div className="campaign-detail"><h1>{t('detail_title')}</h1><p role="status">{t('loading')}</p></div>;
  }

  const changed = (next: CampaignView) => { setCampaign(next); setVersion((v) => v + 1); };
  return (
    <div className="campaign-detail">
      <p className="kicker">{t('detail_title')} <code>{campaign.id}</code></p>
      <h1>{campaign.terms.name}</h1>
      <p className="status-line">
        <span className={`badge status-${campaign.status}`} data-testid="status">{t(`status_${campaign.status}` as Key)}</span>{' '}
        {t('detail_revision', { revision: campaign.revision })}
      </p>
      <Actions {...props} campaign={campaign} onChanged={changed} />
      <Terms {...props} campaign={campaign} />
      {runs(session) && <DetailStats {...props} campaign={campaign} version={version} />}
      {runs(session) && <DetailMedia {...props} campaign={campaign} onChanged={() => setVersion((v) => v + 1)} />}
      <DetailAudit {...props} campaign={campaign} version={version} />
    </div>
  );
}

// The lifecycle actions the signed-in role may take now; a refused one shows the API's problem+json under the buttons.
function Actions({ session, t, campaign, navigate, onUnauthorized, onChanged }: DetailProps & { campaign: CampaignView; onChanged: (c: CampaignView) => void }) {
  const [busy, setBusy] = useState(false);
  const [refused, setRefused] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [reason, setReason] = useState('');
  const [comments, setComments] = useState('');
  const path = `/api/campaigns/${encodeURIComponent(campaign.id)}`;
  const steps = runs(session) ? stepsFrom[campaign.status] ?? [] : [];
  const deciding = decides(session) && campaign.status === 'submitted';
  // Four eyes (Campaigns/DecideCampaign.cs): whoever submitted the revision or made it may not decide it.
  const own = campaign.makers.includes(session.sub) || campaign.submittedBy === session.sub;

  const act = async (action: string, body: unknown) => {
    setBusy(true);
    setRefused(null);
    setDone(null);
    try {
      const next = await postJson<CampaignView>(session, `${path}/${action}`, body);
      onChanged(next);
      setReason('');
      setComments('');
      setDone(t('detail_done', { action: t(`detail_action_${action}` as Key), status: t(`status_${next.status}` as Key) }));
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) onUnauthorized();
      else setRefused(t('detail_refused', { detail: (e as Error).message }));
    } finally {
      setBusy(false);
    }
  };

  const edit = `/console/campaigns/${encodeURIComponent(campaign.id)}/edit`;
  const nothing = steps.length === 0 && !deciding && !(runs(session) && editable(campaign.status));
  return (
    <section aria-labelledby="actions-title" className="panel">
      <h2 id="actions-title">{t('detail_actions')}</h2>
      <p role="status" data-testid="action-done">{done ?? ''}</p>
      {nothing && <p>{t('detail_noActions')}</p>}
      <div className="actions">
        {runs(session) && editable(campaign.status) && (
          <a className="button" href={edit} onClick={(e) => { e.preventDefault(); navigate(edit); }}>{t('detail_action_edit')}</a>
        )}
        {steps.map((step) => (
          <button key={step} type="button" disabled={busy} onClick={() => act(step, {})}>{t(`detail_action_${step}` as Key)}</button>
        ))}
      </div>
      {deciding && (
        <div className="decisions">
          {own && <p id="own-work" className="note">{t('ownWork', { sub: session.sub })}</p>}
          <button type="button" disabled={busy || own} aria-describedby={own ? 'own-work' : undefined}
            onClick={() => act('approve', { revision: campaign.revision })}>
            {t('detail_approveRevision', { revision: campaign.revision })}
          </button>
          <div className="with-text">
            <label htmlFor="detail-reason">{t('reason')}</label>
            <input id="detail-reason" value={reason} maxLength={500} disabled={own} onChange={(e) => setReason(e.target.value)} />
            <button type="button" disabled={busy || own || !reason.trim()} aria-describedby={own ? 'own-work' : undefined}
              onClick={() => act('reject', { reason })}>{t('reject')}</button>
          </div>
          <div className="with-text">
            <label htmlFor="detail-comments">{t('comments')}</label>
            <textarea id="detail-comments" value={comments} maxLength={2000} disabled={own} onChange={(e) => setComments(e.target.value)} />
            <button type="button" disabled={busy || own || !comments.trim()} aria-describedby={own ? 'own-work' : undefined}
              onClick={() => act('return', { comments })}>{t('returnForChanges')}</button>
          </div>
        </div>
      )}
      {refused && <p role="alert" className="error" data-testid="action-refused">{refused}</p>}
    </section>
  );
}

// The terms as the API holds them: money in the campaign's currency, instants in its own (named) time zone.
function Terms({ t, locale, campaign }: DetailProps & { campaign: CampaignView }) {
  const terms = campaign.terms;
  const zone = terms.timeZone;
  const cash = (minor: number) => money(minor, terms.currency, locale);
  const when = (iso: string) => instant(iso, zone, locale);
  const discount = terms.kind === 'amount_off'
    ? cash(terms.amountOff ?? 0)
    : `${terms.percentOff ?? 0} %` + (terms.maxDiscount != null ? ` (${t('detail_atMost', { amount: cash(terms.maxDiscount) })})` : '');
  const validity = terms.validity.type === 'relative'
    ? t('detail_validityDays', { days: terms.validity.days ?? 0 })
    : `${when(terms.validity.from ?? '')} – ${when(terms.validity.to ?? '')}`;
  const rows: [string, string][] = [
    [t('detail_discount'), discount],
    [t('detail_minimumSpend'), terms.minimumSpend > 0 ? cash(terms.minimumSpend) : t('detail_noThreshold')],
    [t('claimWindow', { zone }), `${when(terms.claimStartsAt)} – ${when(terms.claimEndsAt)}`],
    [t('detail_validity', { zone }), validity],
    [t('detail_quantity'), count(terms.totalQuantity, locale)],
    [t('detail_perCustomer'), count(terms.perCustomerLimit, locale)],
    [t('detail_channels'), terms.channels.map((c) => t(`detail_channel_${c}` as Key)).join(', ')],
    [t('detail_categories'), terms.categories.length > 0 ? terms.categories.join(', ') : t('detail_allCategories')],
    [t('detail_newCustomersOnly'), terms.newCustomersOnly ? t('detail_yes') : t('detail_no')],
    [t('detail_returnOnRefund'), terms.returnOnRefund ? t('detail_yes') : t('detail_no')],
    [t('budget'), terms.budget != null ? cash(terms.budget) : t('noBudget')],
    // No policy: the default (ReminderPolicy.Default, 24 h before expiry, nobody held out); no offsets: no reminders.
    [t('detail_reminders'), !terms.reminders ? t('detail_remindersDefault')
      : terms.reminders.offsetsHours.length === 0 ? t('detail_noReminders')
        : t('detail_remindersAt', { hours: terms.reminders.offsetsHours.join(', '), holdout: terms.reminders.holdoutPercent })],
    [t('detail_createdBy'), `${campaign.createdBy} · ${when(campaign.createdAt)}`],
    [t('detail_makers'), campaign.makers.join(', ')],
  ];
  if (campaign.submittedBy && campaign.submittedAt) rows.push([t('detail_submittedBy'), `${campaign.submittedBy} · ${when(campaign.submittedAt)}`]);
  if (campaign.approval) rows.push([t('detail_approvedBy'), t('detail_approvalOf', { by: campaign.approval.by, at: when(campaign.approval.at), revision: campaign.approval.revision })]);
  if (campaign.review) rows.push([t(`detail_review_${campaign.review.outcome}` as Key), `${campaign.review.by} · ${when(campaign.review.at)}: ${campaign.review.reason}`]);
  if (campaign.publishedAt) rows.push([t('detail_publishedAt'), when(campaign.publishedAt)]);
  if (campaign.endedAt) rows.push([t('detail_endedAt'), `${when(campaign.endedAt)}${campaign.endReason ? ` (${campaign.endReason})` : ''}`]);
  return (
    <section aria-labelledby="terms-title" className="panel">
      <h2 id="terms-title">{t('detail_terms')}</h2>
      <dl className="facts" data-testid="terms">
        {rows.map(([label, value]) => <div key={label}><dt>{label}</dt><dd>{value}</dd></div>)}
      </dl>
    </section>
  );
}
