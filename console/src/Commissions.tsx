import { cloneElement, useCallback, useEffect, useState, type FormEvent, type MouseEvent as ReactMouseEvent, type ReactElement } from 'react';
import type { PageProps } from './App';
import type { Key, Language, Translate } from './i18n';
import { ApiError, consoleConfig, type ConsoleConfig, getJson, hasRole, send, type Session } from './session';
import { usePagedList } from './paging';
import { count, instant, money } from './format';

// /console/commissions[/rules | /payouts | /payouts/<batch id> | /quarantine] (docs/console.md, "Commissions"): the
// commission rule versions and a form for the next one (operators), the payout batches with a run form (operators), each
// batch's lines and, for finance, its CSV from Blob storage; and the order events SettleCommission quarantined (operators).
// Money is in minor units of the programme's currency (Commissions__Currency, from GET /api/console/config; a batch names
// its own), instants in the platform's time zone (Stats__TimeZone), named on the page.

type Props = PageProps & { rest: string };
type Section = 'rules' | 'payouts' | 'quarantine';

export function Commissions({ rest, ...props }: Props) {
  const { session, t, navigate } = props;
  const [config, setConfig] = useState<ConsoleConfig | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    consoleConfig().then(setConfig, (e: unknown) => setError((e as Error).message));
  }, []);

  // Who sees what, as the API decides (Identity/Auth.cs): rules and quarantine for operators and admins; payout batches
  // for them and finance.
  const operates = hasRole(session, 'operator', 'admin');
  const pays = hasRole(session, 'finance', 'admin');
  const allowed: Section[] = [...(operates ? ['rules' as const] : []), ...(operates || pays ? ['payouts' as const] : []),
    ...(operates ? ['quarantine' as const] : [])];
  const [first, ...others] = rest.split('/').filter(Boolean);
  const section = (allowed as string[]).includes(first) ? first as Section : allowed[0];
  const follow = (href: string) => (event: ReactMouseEvent) => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    event.preventDefault();
    navigate(href);
  };

  return (
    <div className="commissions">
      <h1>{t('commissions')}</h1>
      {allowed.length === 0 && <p role="alert" className="error">{t('com_noAccess', { role: session.role })}</p>}
      {allowed.length > 1 && (
        <nav aria-label={t('com_sections')} className="tabs">
          {allowed.map((s) => (
            <a key={s} href={`/console/commissions/${s}`} aria-current={s === section ? 'page' : undefined}
              onClick={follow(`/console/commissions/${s}`)}>{t(`com_tab_${s}` as Key)}</a>
          ))}
        </nav>
      )}
      {error && <p role="alert" className="error">{t('listFailed', { detail: error })}</p>}
      {config && section === 'rules' && <Rules {...props} config={config} />}
      {config && section === 'payouts' && (others[0]
        ? <Batch {...props} config={config} id={others[0]} pays={pays} follow={follow} />
        : <Payouts {...props} config={config} operates={operates} follow={follow} />)}
      {config && section === 'quarantine' && <Quarantine {...props} config={config} />}
    </div>
  );
}

type SectionProps = PageProps & { config: ConsoleConfig };

// --- Rules -------------------------------------------------------------------------------------------------------------

interface RateTable { defaultBps: number; categoryBps: Record<string, number> }
interface RuleVersion { effectiveFrom: string; level1: RateTable; level2: RateTable; setBy: string; setAt: string }
interface RulesView { inForce: RuleVersion | null; versions: RuleVersion[] }

function Rules({ session, t, locale, onUnauthorized, config }: SectionProps) {
  const [rules, setRules] = useState<RulesView | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = useLoad(session, '/api/commission-rules', setRules, setError, onUnauthorized);
  useEffect(() => load(), [load]);
  const zone = config.timeZone;

  return (
    <section aria-labelledby="rules-title">
      <h2 id="rules-title">{t('com_rules')}</h2>
      {error && <p role="alert" className="error">{t('listFailed', { detail: error })}</p>}
      {!rules && !error && <p>{t('loading')}</p>}
      {rules && (
        <>
          {rules.inForce
            ? <div className="item" data-testid="in-force">
                <h3 className="item-title">{t('com_inForce')}</h3>
                <dl>
                  <dt>{t('com_effectiveFrom', { zone })}</dt><dd>{instant(rules.inForce.effectiveFrom, zone, locale)}</dd>
                  <dt>{t('com_level1')}</dt><dd>{rates(rules.inForce.level1, locale)}</dd>
                  <dt>{t('com_level2')}</dt><dd>{rates(rules.inForce.level2, locale)}</dd>
                  <dt>{t('com_setBy')}</dt><dd>{rules.inForce.setBy}</dd>
                </dl>
              </div>
            : <p>{t('com_noRules')}</p>}
          {rules.versions.length > 0 && (
            <div className="scroll">
              <table data-testid="versions">
                <caption>{t('com_versions', { zone })}</caption>
                <thead>
                  <tr><th scope="col">{t('com_effectiveFromShort')}</th><th scope="col">{t('com_level1')}</th>
                    <th scope="col">{t('com_level2')}</th><th scope="col">{t('com_setBy')}</th></tr>
                </thead>
                <tbody>
                  {[...rules.versions].reverse().map((v) => (
                    <tr key={v.effectiveFrom}>
                      <th scope="row">{instant(v.effectiveFrom, zone, locale)}</th>
                      <td>{rates(v.level1, locale)}</td><td>{rates(v.level2, locale)}</td><td>{v.setBy}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
      <RuleForm session={session} t={t} zone={zone} onUnauthorized={onUnauthorized} onSaved={(view) => setRules(view)} />
    </section>
  );
}

// A rate in basis points as a percentage, and how many basis points (what the API and the form speak).
function bps(value: number, locale: Language): string {
  return `${new Intl.NumberFormat(locale, { style: 'percent', maximumFractionDigits: 2 }).format(value / 10000)} (${count(value, locale)} bp)`;
}

function rates(table: RateTable, locale: Language): string {
  const overrides = Object.entries(table.categoryBps).map(([c, v]) => `${c} ${bps(v, locale)}`);
  return [bps(table.defaultBps, locale), ...overrides].join('; ');
}

type Errors = Record<string, string[]>;

// PUT /api/commission-rules: the next version. Field errors of a refusal (problem+json) show under their fields, every
// one at once; errors about both levels together (their sum) above the button.
function RuleForm({ session, t, zone, onUnauthorized, onSaved }: {
  session: Session; t: Translate; zone: string; onUnauthorized: () => void; onSaved: (view: RulesView) => void;
}) {
  const [values, setValues] = useState({ level1: '1000', level2: '300', categories1: '', categories2: '', effectiveFrom: '' });
  const [errors, setErrors] = useState<Errors>({});
  const [message, setMessage] = useState<string | null>(null);
  const [failed, setFailed] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const set = (name: keyof typeof values) => (e: { target: { value: string } }) => setValues((v) => ({ ...v, [name]: e.target.value }));

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setMessage(null);
    setFailed(null);
    const local: Errors = {};
    const categories1 = parseCategories(values.categories1, 'level1.categoryBps', local, t);
    const categories2 = parseCategories(values.categories2, 'level2.categoryBps', local, t);
    setErrors(local);
    if (Object.keys(local).length > 0) return;
    const body = {
      level1: { defaultBps: Number(values.level1), categoryBps: categories1 },
      level2: { defaultBps: Number(values.level2), categoryBps: categories2 },
      ...(values.effectiveFrom ? { effectiveFrom: zonedToUtc(values.effectiveFrom, zone) } : {}),
    };
    setBusy(true);
    try {
      const view = (await (await send(session, 'PUT', '/api/commission-rules', body)).json()) as RulesView;
      onSaved(view);
      setMessage(t('com_ruleSaved'));
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) onUnauthorized();
      else if (e instanceof ApiError && e.problem?.errors) {
        setErrors(e.problem.errors);
        setFailed(e.problem.title ?? e.message);
      } else setFailed((e as Error).message);
    } finally {
      setBusy(false);
    }
  };

  // Errors about a level's field, by the API's names (level1.defaultBps, level1.categoryBps.books, ...).
  const about = (prefix: string) => Object.entries(errors).filter(([k]) => k === prefix || k.startsWith(prefix + '.'))
    .flatMap(([k, m]) => m.map((text) => (k === prefix ? text : `${k.slice(prefix.length + 1)}: ${text}`)));
  const claimed = ['level1.defaultBps', 'level1.categoryBps', 'level2.defaultBps', 'level2.categoryBps', 'effectiveFrom'];
  const general = Object.entries(errors).filter(([k]) => !claimed.some((c) => k === c || k.startsWith(c + '.')))
    .flatMap(([k, m]) => m.map((text) => `${k}: ${text}`));

  return (
    <form className="form" onSubmit={submit} noValidate aria-labelledby="rule-form-title">
      <h3 id="rule-form-title">{t('com_newVersion')}</h3>
      <p className="hint">{t('com_bpsHint')}</p>
      <Field id="rule-level1" label={t('com_level1Default')} errors={about('level1.defaultBps')}>
        <input type="number" inputMode="numeric" min={0} max={10000} value={values.level1} onChange={set('level1')} />
      </Field>
      <Field id="rule-categories1" label={t('com_level1Categories')} hint={t('com_categoriesHint')} errors={about('level1.categoryBps')}>
        <textarea value={values.categories1} rows={2} onChange={set('categories1')} />
      </Field>
      <Field id="rule-level2" label={t('com_level2Default')} errors={about('level2.defaultBps')}>
        <input type="number" inputMode="numeric" min={0} max={10000} value={values.level2} onChange={set('level2')} />
      </Field>
      <Field id="rule-categories2" label={t('com_level2Categories')} hint={t('com_categoriesHint')} errors={about('level2.categoryBps')}>
        <textarea value={values.categories2} rows={2} onChange={set('categories2')} />
      </Field>
      <Field id="rule-from" label={t('com_effectiveFrom', { zone })} hint={t('com_effectiveFromHint')} errors={about('effectiveFrom')}>
        <input type="datetime-local" value={values.effectiveFrom} onChange={set('effectiveFrom')} />
      </Field>
      {general.length > 0 && <ul className="error" data-testid="rule-errors">{general.map((g) => <li key={g}>{g}</li>)}</ul>}
      <button type="submit" disabled={busy}>{t('com_saveVersion')}</button>
      <p role="status" data-testid="rule-status">{message ?? ''}</p>
      {failed && <p role="alert" className="error">{t('decisionFailed', { detail: failed })}</p>}
    </form>
  );
}

// "books=500" a line; blank lines skipped. A line that is not category=number is this form's own field error.
function parseCategories(text: string, field: string, errors: Errors, t: Translate): Record<string, number> {
  const result: Record<string, number> = {};
  for (const line of text.split('\n').map((l) => l.trim()).filter(Boolean)) {
    const match = /^(.+?)\s*=\s*(-?\d+)$/.exec(line);
    if (match) result[match[1]] = Number(match[2]);
    else (errors[field] ??= []).push(t('com_categoryLine', { line }));
  }
  return result;
}

// A wall-clock time typed in the platform's zone (datetime-local has no zone) as the UTC instant it is there.
function zonedToUtc(local: string, timeZone: string): string {
  const [date, time] = local.split('T');
  const [y, m, d] = date.split('-').map(Number);
  const [hh, mm] = time.split(':').map(Number);
  const wall = Date.UTC(y, m - 1, d, hh, mm);
  const offset = (at: number) => {
    const parts = Object.fromEntries(new Intl.DateTimeFormat('en-US', {
      timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
    }).formatToParts(new Date(at)).map((p) => [p.type, p.value]));
    return Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second) - at;
  };
  // Twice: the offset at the guess may differ from the offset at the answer across a daylight-saving change.
  return new Date(wall - offset(wall - offset(wall))).toISOString();
}

// A labelled control with its hint and its errors, tied to it for screen readers.
function Field({ id, label, hint, errors, children }: {
  id: string; label: string; hint?: string; errors: string[]; children: ReactElement<Record<string, unknown>>;
}) {
  const described = [hint ? `${id}-hint` : '', errors.length ? `${id}-errors` : ''].filter(Boolean).join(' ') || undefined;
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {hint && <span id={`${id}-hint`} className="hint">{hint}</span>}
      {cloneElement(children, { id, 'aria-describedby': described, 'aria-invalid': errors.length > 0 || undefined })}
      {errors.length > 0 && <ul id={`${id}-errors`} className="error field-errors">{errors.map((e) => <li key={e}>{e}</li>)}</ul>}
    </div>
  );
}

// --- Payouts -----------------------------------------------------------------------------------------------------------

interface Approval { status: string; decidedBy?: string | null; decidedAt?: string | null; reason?: string | null }
interface BatchSummary {
  batchId: string; state: string; minimum: number; currency: string; total: number | null; lines: number | null;
  createdBy: string; createdAt: string; completedAt: string | null; approval: Approval | null;
}
interface BatchPage { items: BatchSummary[]; continuationToken: string | null }
interface BatchLine { promoterId: string; amount: number; entries: number; state: string }
interface BatchView extends Omit<BatchSummary, 'lines' | 'total'> { total: number; promoters: number; lines: BatchLine[]; skipped: string[] }

type Follow = (href: string) => (event: ReactMouseEvent) => void;

function Payouts({ session, t, locale, onUnauthorized, navigate, config, operates, follow }: SectionProps & { operates: boolean; follow: Follow }) {
  const { items: batches, next, more, error } = usePagedList<BatchSummary, BatchPage>(session, '/api/payouts?limit=20', onUnauthorized);
  const zone = config.timeZone;

  return (
    <section aria-labelledby="payouts-title">
      <h2 id="payouts-title">{t('com_payouts')}</h2>
      {operates && <RunBatch session={session} t={t} locale={locale} config={config} onUnauthorized={onUnauthorized}
        onRun={(id) => navigate(`/console/commissions/payouts/${encodeURIComponent(id)}`)} />}
      {error && <p role="alert" className="error">{t('listFailed', { detail: error })}</p>}
      {!batches && !error && <p>{t('loading')}</p>}
      {batches && <p>{batches.length === 0 ? t('com_noBatches') : t('shownCount', { count: count(batches.length, locale) })}</p>}
      {batches && batches.length > 0 && (
        <ul className="campaign-list" data-testid="batches">
          {batches.map((b) => {
            const href = `/console/commissions/payouts/${encodeURIComponent(b.batchId)}`;
            return (
              <li key={b.batchId} className="item">
                <h3 className="item-title"><a href={href} onClick={follow(href)}>{b.batchId}</a></h3>
                <dl>
                  <dt>{t('status')}</dt><dd className="state">{t(`com_state_${b.state}` as Key)}</dd>
                  <dt>{t('com_total')}</dt><dd>{b.total == null ? '—' : money(b.total, b.currency, locale)}</dd>
                  <dt>{t('com_lines')}</dt><dd>{b.lines == null ? '—' : count(b.lines, locale)}</dd>
                  <dt>{t('com_minimum')}</dt><dd>{money(b.minimum, b.currency, locale)}</dd>
                  <dt>{t('com_createdAt', { zone })}</dt><dd>{instant(b.createdAt, zone, locale)}</dd>
                  <dt>{t('com_createdBy')}</dt><dd>{b.createdBy}</dd>
                </dl>
              </li>
            );
          })}
        </ul>
      )}
      {next && <button type="button" onClick={more}>{t('loadMore')}</button>}
    </section>
  );
}

// A currency's minor-unit digits (CNY 2, JPY 0), as format.ts finds them.
function digitsOf(currency: string): number {
  return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
}

// POST /api/payouts {batchId, minimum}: the minimum is typed in the currency's units and sent in minor units. The answer
// is the batch's CSV (paid) or 202 (waits for finance): either way the batch's page shows what happened.
function RunBatch({ session, t, locale, config, onUnauthorized, onRun }: {
  session: Session; t: Translate; locale: Language; config: ConsoleConfig; onUnauthorized: () => void; onRun: (id: string) => void;
}) {
  const digits = digitsOf(config.currency);
  const [batchId, setBatchId] = useState('');
  const [minimum, setMinimum] = useState((100).toFixed(digits));
  const [errors, setErrors] = useState<Errors>({});
  const [failed, setFailed] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setFailed(null);
    const amount = Number(minimum);
    if (!minimum.trim() || !Number.isFinite(amount)) {
      setErrors({ minimum: [t('com_minimumNumber')] });
      return;
    }
    setErrors({});
    setBusy(true);
    try {
      await send(session, 'POST', '/api/payouts', { batchId: batchId.trim(), minimum: Math.round(amount * 10 ** digits) });
      onRun(batchId.trim());
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) onUnauthorized();
      else {
        if (e instanceof ApiError && e.problem?.errors) setErrors(e.problem.errors);
        setFailed((e as Error).message);
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="form" onSubmit={submit} noValidate aria-labelledby="run-title">
      <h3 id="run-title">{t('com_runBatch')}</h3>
      <p className="hint">{t('com_runHint')}</p>
      <Field id="run-batch" label={t('com_batchId')} hint={t('com_batchIdHint')} errors={errors.batchId ?? []}>
        <input value={batchId} maxLength={64} autoComplete="off" onChange={(e) => setBatchId(e.target.value)} />
      </Field>
      <Field id="run-minimum" label={t('com_minimumIn', { currency: config.currency })}
        hint={Number.isFinite(Number(minimum)) ? money(Math.round(Number(minimum) * 10 ** digits), config.currency, locale) : undefined}
        errors={errors.minimum ?? []}>
        <input type="number" inputMode="decimal" min={0} step={1 / 10 ** digits} value={minimum} onChange={(e) => setMinimum(e.target.value)} />
      </Field>
      <button type="submit" disabled={busy || !batchId.trim()}>{t('com_run')}</button>
      {failed && <p role="alert" className="error">{t('decisionFailed', { detail: failed })}</p>}
    </form>
  );
}

function Batch({ session, t, locale, onUnauthorized, config, id, pays, follow }: SectionProps & { id: string; pays: boolean; follow: Follow }) {
  const [batch, setBatch] = useState<BatchView | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = useLoad(session, `/api/payouts/${encodeURIComponent(id)}`, setBatch, setError, onUnauthorized);
  useEffect(() => load(), [load]);
  const zone = config.timeZone;

  return (
    <section aria-labelledby="batch-title">
      <p><a href="/console/commissions/payouts" onClick={follow('/console/commissions/payouts')}>{t('com_allBatches')}</a></p>
      <h2 id="batch-title">{t('com_batch', { id })}</h2>
      {error && <p role="alert" className="error">{t('listFailed', { detail: error })}</p>}
      {!batch && !error && <p>{t('loading')}</p>}
      {batch && (
        <>
          <div className="item" data-testid="batch">
            <dl>
              <dt>{t('status')}</dt><dd className="state">{t(`com_state_${batch.state}` as Key)}</dd>
              <dt>{t('com_total')}</dt><dd>{money(batch.total, batch.currency, locale)}</dd>
              <dt>{t('com_lines')}</dt><dd>{count(batch.promoters, locale)}</dd>
              <dt>{t('com_minimum')}</dt><dd>{money(batch.minimum, batch.currency, locale)}</dd>
              <dt>{t('com_createdAt', { zone })}</dt><dd>{instant(batch.createdAt, zone, locale)}</dd>
              <dt>{t('com_createdBy')}</dt><dd>{batch.createdBy}</dd>
              {batch.completedAt && <><dt>{t('com_completedAt', { zone })}</dt><dd>{instant(batch.completedAt, zone, locale)}</dd></>}
              {batch.approval && <><dt>{t('com_approval')}</dt><dd>{[batch.approval.status, batch.approval.decidedBy, batch.approval.reason].filter(Boolean).join(' · ')}</dd></>}
              {batch.skipped.length > 0 && <><dt>{t('com_skipped')}</dt><dd>{batch.skipped.join(', ')}</dd></>}
            </dl>
            {batch.state === 'awaiting_approval' && <p className="note">{t('com_awaiting')}</p>}
          </div>
          {pays && batch.state === 'completed' && <CsvLink session={session} t={t} locale={locale} zone={zone} id={id} onUnauthorized={onUnauthorized} />}
          {batch.lines.length > 0
            ? <div className="scroll">
                <table data-testid="lines">
                  <caption>{t('com_linesCaption')}</caption>
                  <thead><tr><th scope="col">{t('com_promoter')}</th><th scope="col">{t('amount')}</th>
                    <th scope="col">{t('com_entries')}</th><th scope="col">{t('status')}</th></tr></thead>
                  <tbody>
                    {batch.lines.map((l) => (
                      <tr key={l.promoterId}>
                        <th scope="row">{l.promoterId}</th><td>{money(l.amount, batch.currency, locale)}</td>
                        <td>{count(l.entries, locale)}</td><td>{t(`com_line_${l.state}` as Key)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            : <p>{t('com_noLines')}</p>}
        </>
      )}
    </section>
  );
}

// Finance's CSV: GET .../csv-link signs a 10-minute read link to the file on Blob storage; the page shows it as a plain
// link, which the browser follows to download the file (the blob answers Content-Disposition: attachment). A navigation,
// not a fetch: the CSP's connect-src does not need the storage origin.
function CsvLink({ session, t, locale, zone, id, onUnauthorized }: {
  session: Session; t: Translate; locale: Language; zone: string; id: string; onUnauthorized: () => void;
}) {
  const [link, setLink] = useState<{ url: string; expiresAt: string } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const ask = () => {
    setError(null);
    getJson<{ url: string; expiresAt: string }>(session, `/api/payouts/${encodeURIComponent(id)}/csv-link`)
      .then(setLink)
      .catch((e: unknown) => {
        if (e instanceof ApiError && e.status === 401) onUnauthorized();
        else setError((e as Error).message);
      });
  };
  return (
    <div className="csv">
      <button type="button" onClick={ask}>{t('com_csvLink')}</button>
      <p role="status">
        {link && <a href={link.url} data-testid="csv-download">{t('com_download', { id, time: instant(link.expiresAt, zone, locale) })}</a>}
      </p>
      {error && <p role="alert" className="error">{t('listFailed', { detail: error })}</p>}
    </div>
  );
}

// --- Quarantine --------------------------------------------------------------------------------------------------------

interface Quarantined { id: string; day: string; messageId: string; deliveryCount: number; reason: string; body: string; receivedAt: string }
interface QuarantineView { day: string; items: Quarantined[] }

// How much of a quarantined body is shown: enough to recognise the event; the API keeps up to 4 KB.
const BodyPreview = 300;

function Quarantine({ session, t, locale, onUnauthorized, config }: SectionProps) {
  const [day, setDay] = useState<string | null>(null);
  const [view, setView] = useState<QuarantineView | null>(null);
  const [error, setError] = useState<string | null>(null);
  // Without a day the API answers today's (UTC: the records are filed by their UTC day) and names it.
  const path = `/api/order-events/quarantine${day ? `?day=${encodeURIComponent(day)}` : ''}`;
  const load = useLoad(session, path, setView, setError, onUnauthorized);
  useEffect(() => load(), [load]);
  const zone = config.timeZone;

  return (
    <section aria-labelledby="quarantine-title">
      <h2 id="quarantine-title">{t('com_quarantine')}</h2>
      <p className="hint">{t('com_quarantineHint')}</p>
      <div className="filters">
        <label htmlFor="quarantine-day">{t('com_day')}</label>{' '}
        <input id="quarantine-day" type="date" value={day ?? view?.day ?? ''} onChange={(e) => e.target.value && setDay(e.target.value)} />
      </div>
      {error && <p role="alert" className="error">{t('listFailed', { detail: error })}</p>}
      {!view && !error && <p>{t('loading')}</p>}
      {view && <p role="status">{view.items.length === 0 ? t('com_noQuarantined', { day: view.day }) : t('com_quarantinedCount', { count: count(view.items.length, locale), day: view.day })}</p>}
      {view && view.items.length > 0 && (
        <ul className="approval-list" data-testid="quarantined">
          {view.items.map((q) => (
            <li key={q.id} className="item">
              <h3 className="item-title">{q.reason}</h3>
              <dl>
                <dt>{t('com_messageId')}</dt><dd><code>{q.messageId}</code></dd>
                <dt>{t('com_receivedAt', { zone })}</dt><dd>{instant(q.receivedAt, zone, locale)}</dd>
                <dt>{t('com_deliveries')}</dt><dd>{count(q.deliveryCount, locale)}</dd>
              </dl>
              <p className="hint">{t('com_bodyStart', { count: count(Math.min(q.body.length, BodyPreview), locale), total: count(q.body.length, locale) })}</p>
              <pre className="body">{printable(q.body.slice(0, BodyPreview))}</pre>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

// The body as text: React escapes markup; control characters (other than line breaks and tabs) are shown as \u escapes
// so nothing invisible or terminal-like reaches the page.
function printable(text: string): string {
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

// --- Shared ------------------------------------------------------------------------------------------------------------

// GET path into `set` (and errors into `fail`; a 401 signs out), cancelled when the page moves on.
function useLoad<T>(session: Session, path: string, set: (value: T) => void, fail: (error: string | null) => void, onUnauthorized: () => void) {
  return useCallback(() => {
    const abort = new AbortController();
    fail(null);
    getJson<T>(session, path, abort.signal).then(set).catch((e: unknown) => {
      if (abort.signal.aborted) return;
      if (e instanceof ApiError && e.status === 401) onUnauthorized();
      else fail((e as Error).message);
    });
    return () => abort.abort();
    // Not on set and fail: the callers pass state setters (stable); path and session decide what is read.
  }, [session, path, onUnauthorized]);
}
