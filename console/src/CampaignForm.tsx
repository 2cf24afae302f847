import { useCallback, useEffect, useMemo, useRef, useState, type FormEvent, type ReactNode } from 'react';
import type { PageProps } from './App';
import type { Key, Translate } from './i18n';
import { ApiError, postJson, type Problem, type Session } from './session';
import { currencyDigits, instantToLocal, isZone, localToInstant, majorToMinor, minorToMajor } from './zoned';

// /console/campaigns/new and /console/campaigns/{id}/edit: a campaign's terms (CampaignTerms in
// functions/Marketing.Functions/Campaigns/Campaign.cs, docs/api.md "Campaign terms"), sent to POST /api/campaigns or
// PUT /api/campaigns/{id} with If-Match (the ETag of the GET it was loaded from). A 400 validation-failed answer's
// field errors are shown next to their fields (aria-invalid, aria-describedby), summarised at the top with links, and
// focus moves to the first invalid field; errors about no field of the form go to the summary.

interface Terms {
  name: string; kind: 'amount_off' | 'percent_off'; amountOff?: number | null; percentOff?: number | null; maxDiscount?: number | null;
  minimumSpend: number; currency: string; categories: string[]; newCustomersOnly: boolean; channels: string[];
  claimStartsAt: string; claimEndsAt: string;
  validity: { type: 'relative' | 'absolute'; days?: number | null; from?: string | null; to?: string | null };
  totalQuantity: number; perCustomerLimit: number; timeZone: string; budget?: number | null; returnOnRefund: boolean;
  stockShards?: number | null; reminders?: { offsetsHours: number[]; holdoutPercent: number } | null;
}
interface CampaignView { id: string; status: string; revision: number; terms: Terms }

const channels = ['app', 'mini_program', 'h5', 'ota'] as const;

// What the inputs hold: text as typed (money in major units, instants as local date and time in the campaign's zone).
interface Fields {
  name: string; kind: 'amount_off' | 'percent_off'; amountOff: string; percentOff: string; maxDiscount: string; minimumSpend: string;
  currency: string; categories: string; newCustomersOnly: boolean; channels: string[]; timeZone: string;
  claimStartsAt: string; claimEndsAt: string; validityType: 'relative' | 'absolute'; validityDays: string; validityFrom: string; validityTo: string;
  totalQuantity: string; perCustomerLimit: string; budget: string; stockShards: string; returnOnRefund: boolean;
  remindersMode: 'default' | 'custom' | 'none'; offsetsHours: string; holdoutPercent: string;
}
type FieldName = keyof Fields;

// The API's error keys (JSON paths of the terms: "name", "validity.days", "channels[1]", "reminders.offsetsHours[0]")
// → the input that shows them. A key naming an element of a list is shown on the list's input; anything else ("$", a
// field this form does not have) goes to the summary only.
const apiFields: Record<string, FieldName> = {
  name: 'name', kind: 'kind', amountOff: 'amountOff', percentOff: 'percentOff', maxDiscount: 'maxDiscount', minimumSpend: 'minimumSpend',
  currency: 'currency', categories: 'categories', newCustomersOnly: 'newCustomersOnly', channels: 'channels', timeZone: 'timeZone',
  claimStartsAt: 'claimStartsAt', claimEndsAt: 'claimEndsAt', validity: 'validityType', 'validity.type': 'validityType',
  'validity.days': 'validityDays', 'validity.from': 'validityFrom', 'validity.to': 'validityTo', totalQuantity: 'totalQuantity',
  perCustomerLimit: 'perCustomerLimit', budget: 'budget', stockShards: 'stockShards', returnOnRefund: 'returnOnRefund',
  reminders: 'remindersMode', 'reminders.offsetsHours': 'offsetsHours', 'reminders.holdoutPercent': 'holdoutPercent',
};
function fieldOf(apiKey: string): FieldName | undefined {
  return apiFields[apiKey.replace(/\[\d+\]$/, '')];
}
// The fields in the order they appear, so "the first invalid field" is the first on the page.
const order: FieldName[] = ['name', 'kind', 'amountOff', 'percentOff', 'maxDiscount', 'minimumSpend', 'currency', 'categories',
  'newCustomersOnly', 'channels', 'timeZone', 'claimStartsAt', 'claimEndsAt', 'validityType', 'validityDays', 'validityFrom',
  'validityTo', 'totalQuantity', 'perCustomerLimit', 'budget', 'stockShards', 'returnOnRefund', 'remindersMode', 'offsetsHours',
  'holdoutPercent'];
// The element focused for a field: groups of radios or checkboxes focus their first.
const inputId = (f: FieldName) => `f-${f}`;

function blank(now: Date): Fields {
  const zone = 'Asia/Shanghai';
  // Claiming from tomorrow 00:00 to 30 days later, in the campaign's zone (not the browser's).
  const today = instantToLocal(now.toISOString(), zone).slice(0, 10);
  const day = (n: number) => new Date(Date.parse(`${today}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10) + 'T00:00';
  return {
    name: '', kind: 'amount_off', amountOff: '', percentOff: '', maxDiscount: '', minimumSpend: '0', currency: 'CNY', categories: '',
    newCustomersOnly: false, channels: ['app', 'mini_program', 'h5'], timeZone: zone, claimStartsAt: day(1), claimEndsAt: day(31),
    validityType: 'relative', validityDays: '7', validityFrom: '', validityTo: '', totalQuantity: '', perCustomerLimit: '1', budget: '',
    stockShards: '', returnOnRefund: false, remindersMode: 'default', offsetsHours: '24', holdoutPercent: '0',
  };
}

function fieldsOf(terms: Terms): Fields {
  const digits = currencyDigits(terms.currency);
  const major = (minor?: number | null) => (minor == null ? '' : minorToMajor(minor, digits));
  const local = (iso?: string | null) => (iso ? instantToLocal(iso, terms.timeZone) : '');
  const r = terms.reminders;
  return {
    name: terms.name, kind: terms.kind, amountOff: major(terms.amountOff), percentOff: terms.percentOff?.toString() ?? '',
    maxDiscount: major(terms.maxDiscount), minimumSpend: major(terms.minimumSpend), currency: terms.currency,
    categories: terms.categories.join(', '), newCustomersOnly: terms.newCustomersOnly, channels: terms.channels, timeZone: terms.timeZone,
    claimStartsAt: local(terms.claimStartsAt), claimEndsAt: local(terms.claimEndsAt), validityType: terms.validity.type,
    validityDays: terms.validity.days?.toString() ?? '', validityFrom: local(terms.validity.from), validityTo: local(terms.validity.to),
    totalQuantity: String(terms.totalQuantity), perCustomerLimit: String(terms.perCustomerLimit), budget: major(terms.budget),
    stockShards: terms.stockShards?.toString() ?? '', returnOnRefund: terms.returnOnRefund,
    remindersMode: r == null ? 'default' : r.offsetsHours.length === 0 ? 'none' : 'custom',
    offsetsHours: r ? r.offsetsHours.join(', ') : '24', holdoutPercent: String(r?.holdoutPercent ?? 0),
  };
}

type Errors = Partial<Record<FieldName, string[]>>;

// The terms to send, or the fields the form could not turn into them (text that is not a number, a time the zone
// skips). Empty inputs are left out, so the API names every missing required field at once; optional ones left empty
// mean "none". An instant the operator did not touch (same text, same zone) is sent as it was loaded, to the second.
function termsOf(f: Fields, t: Translate, loaded: { fields: Fields; terms: Terms } | null): { terms?: Record<string, unknown>; errors: Errors } {
  const errors: Errors = {};
  const terms: Record<string, unknown> = {};
  const digits = currencyDigits(f.currency);
  const money = (field: FieldName, text: string) => {
    if (text.trim() === '') return undefined;
    const minor = majorToMinor(text, digits);
    if (minor === null) errors[field] = [t('form_notMoney', { currency: f.currency, digits })];
    return minor ?? undefined;
  };
  const whole = (field: FieldName, text: string) => {
    if (text.trim() === '') return undefined;
    if (!/^\d{1,15}$/.test(text.trim())) { errors[field] = [t('form_notNumber')]; return undefined; }
    return Number(text.trim());
  };
  const instant = (field: FieldName, text: string, original?: string | null) => {
    if (text === '') return undefined;
    if (loaded && original && text === loaded.fields[field] && f.timeZone === loaded.fields.timeZone) return original;
    const at = localToInstant(text, f.timeZone);
    if (at === 'skipped') errors[field] = [t('form_timeSkipped', { zone: f.timeZone })];
    else if (at === null && isZone(f.timeZone)) errors[field] = [t('form_notTime')];
    // An unknown zone: the API names the time zone; the instants wait for it.
    return typeof at === 'string' && at !== 'skipped' ? at : undefined;
  };
  const old = loaded?.terms;
  terms.name = f.name;
  terms.kind = f.kind;
  if (f.kind === 'amount_off') terms.amountOff = money('amountOff', f.amountOff);
  else {
    terms.percentOff = whole('percentOff', f.percentOff);
    terms.maxDiscount = money('maxDiscount', f.maxDiscount);
  }
  terms.minimumSpend = money('minimumSpend', f.minimumSpend) ?? 0;
  terms.currency = f.currency.trim();
  terms.categories = f.categories.split(/[,，]/).map((c) => c.trim()).filter(Boolean);
  terms.newCustomersOnly = f.newCustomersOnly;
  terms.channels = f.channels;
  terms.timeZone = f.timeZone;
  terms.claimStartsAt = instant('claimStartsAt', f.claimStartsAt, old?.claimStartsAt);
  terms.claimEndsAt = instant('claimEndsAt', f.claimEndsAt, old?.claimEndsAt);
  terms.validity = f.validityType === 'relative'
    ? { type: 'relative', days: whole('validityDays', f.validityDays) }
    : { type: 'absolute', from: instant('validityFrom', f.validityFrom, old?.validity.from), to: instant('validityTo', f.validityTo, old?.validity.to) };
  terms.totalQuantity = whole('totalQuantity', f.totalQuantity);
  terms.perCustomerLimit = whole('perCustomerLimit', f.perCustomerLimit);
  terms.budget = money('budget', f.budget);
  terms.stockShards = whole('stockShards', f.stockShards);
  terms.returnOnRefund = f.returnOnRefund;
  if (f.remindersMode === 'none') terms.reminders = { offsetsHours: [], holdoutPercent: 0 };
  else if (f.remindersMode === 'custom') {
    const hours = f.offsetsHours.split(/[,，\s]+/).filter(Boolean);
    if (hours.some((h) => !/^\d{1,6}$/.test(h))) errors.offsetsHours = [t('form_notNumber')];
    terms.reminders = { offsetsHours: hours.map(Number), holdoutPercent: whole('holdoutPercent', f.holdoutPercent) ?? 0 };
  }
  // JSON leaves undefined members out: the API then says "Required." for what must be there.
  return Object.keys(errors).length > 0 ? { errors } : { terms, errors };
}

// One API call with the form's needs: the ETag of a read, If-Match on a write, and the problem+json body as data.
async function call(session: Session, method: string, path: string, body?: unknown, ifMatch?: string | null) {
  const headers: Record<string, string> = { Authorization: `Bearer ${session.token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (ifMatch) headers['If-Match'] = ifMatch;
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const json = (await response.json().catch(() => null)) as unknown;
  return { status: response.status, ok: response.ok, etag: response.headers.get('ETag'), json };
}

export function CampaignForm({ session, t, onUnauthorized, navigate, id }: PageProps & { id?: string }) {
  const [fields, setFields] = useState<Fields>(() => blank(new Date()));
  const [loaded, setLoaded] = useState<{ fields: Fields; terms: Terms; etag: string | null; status: string; revision: number } | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [errors, setErrors] = useState<Errors>({});
  const [others, setOthers] = useState<string[]>([]);
  const [summaryTitle, setSummaryTitle] = useState<string | null>(null);
  const [notice, setNotice] = useState<{ kind: 'saved' | 'conflict' | 'refused'; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const focusFirst = useRef(false);

  const load = useCallback(async () => {
    if (!id) return;
    setLoadError(null);
    const r = await call(session, 'GET', `/api/campaigns/${encodeURIComponent(id)}`);
    if (r.status === 401) { onUnauthorized(); return; }
    if (!r.ok) { setLoadError(problemText(r.json as Problem, r.status)); return; }
    const campaign = r.json as CampaignView;
    const f = fieldsOf(campaign.terms);
    setFields(f);
    setLoaded({ fields: f, terms: campaign.terms, etag: r.etag, status: campaign.status, revision: campaign.revision });
    setErrors({});
    setOthers([]);
    setSummaryTitle(null);
  }, [id, session, onUnauthorized]);

  useEffect(() => { void load(); }, [load]);

  // After a refused save, focus goes to the first invalid field (once the errors are on the page).
  useEffect(() => {
    if (!focusFirst.current) return;
    focusFirst.current = false;
    const first = order.find((f) => errors[f]);
    if (first) document.getElementById(inputId(first))?.focus();
    else document.getElementById('form-summary')?.focus();
  }, [errors, others]);

  const set = <K extends FieldName>(name: K, value: Fields[K]) => setFields((f) => ({ ...f, [name]: value }));
  const dirty = useMemo(() => !loaded || JSON.stringify(loaded.fields) !== JSON.stringify(fields), [loaded, fields]);
  const frozen = loaded != null && (loaded.status === 'submitted' || loaded.status === 'ended');

  const showErrors = (byField: Errors, rest: string[], title: string | null) => {
    focusFirst.current = true;
    setSummaryTitle(title);
    setOthers(rest);
    setErrors(byField);
  };
  const showProblem = (problem: Problem) => {
    const byField: Errors = {};
    const rest: string[] = [];
    for (const [key, messages] of Object.entries(problem.errors ?? {})) {
      const field = fieldOf(key);
      if (field) byField[field] = [...(byField[field] ?? []), ...messages];
      else rest.push(`${key}: ${messages.join(' ')}`);
    }
    showErrors(byField, rest, problemText(problem, 0));
  };

  const save = async (event: FormEvent) => {
    event.preventDefault();
    setNotice(null);
    const built = termsOf(fields, t, loaded);
    if (!built.terms) {
      showErrors(built.errors, [], null);
      return;
    }
    setBusy(true);
    try {
      const r = id
        ? await call(session, 'PUT', `/api/campaigns/${encodeURIComponent(id)}`, built.terms, loaded?.etag)
        : await call(session, 'POST', '/api/campaigns', built.terms);
      if (r.status === 401) { onUnauthorized(); return; }
      const problem = (r.json ?? {}) as Problem;
      if (r.ok) {
        const campaign = r.json as CampaignView;
        setErrors({});
        setOthers([]);
        setSummaryTitle(null);
        if (!id) { navigate(`/console/campaigns/${encodeURIComponent(campaign.id)}`); return; }
        const f = fieldsOf(campaign.terms);
        setFields(f);
        setLoaded({ fields: f, terms: campaign.terms, etag: r.etag, status: campaign.status, revision: campaign.revision });
        setNotice({ kind: 'saved', text: t('form_saved', { revision: campaign.revision, status: statusWord(t, campaign.status) }) });
      } else if (r.status === 412) {
        // Someone saved in between (If-Match no longer matches): never overwrite their change unseen.
        setNotice({ kind: 'conflict', text: t('form_conflict') });
      } else if (problem.errors && Object.keys(problem.errors).length > 0) {
        // 400 validation-failed, or 409 campaign-not-editable naming the fields a published campaign cannot change.
        showProblem(problem);
      } else {
        setNotice({ kind: 'refused', text: t('form_refused', { detail: problemText(problem, r.status) }) });
      }
    } catch (e) {
      setNotice({ kind: 'refused', text: t('form_refused', { detail: (e as Error).message }) });
    } finally {
      setBusy(false);
    }
  };

  const submit = async () => {
    if (!id) return;
    setNotice(null);
    setBusy(true);
    try {
      const campaign = await postJson<CampaignView>(session, `/api/campaigns/${encodeURIComponent(id)}/submit`, {});
      setLoaded((l) => (l ? { ...l, status: campaign.status, revision: campaign.revision, etag: null } : l));
      setNotice({ kind: 'saved', text: t('form_submitted', { status: statusWord(t, campaign.status) }) });
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) onUnauthorized();
      else setNotice({ kind: 'refused', text: t('form_refused', { detail: (e as Error).message }) });
    } finally {
      setBusy(false);
    }
  };

  const digits = currencyDigits(fields.currency);
  const currency = fields.currency || '—';
  const errorCount = Object.values(errors).reduce((n, e) => n + (e?.length ?? 0), 0) + others.length;
  const zones = useMemo(() => {
    const all = Intl.supportedValuesOf('timeZone');
    return all.includes(fields.timeZone) || !fields.timeZone ? all : [fields.timeZone, ...all];
  }, [fields.timeZone]);

  // One labelled input with its hint and its errors, described by both.
  const field = (name: FieldName, label: string, input: (props: InputProps) => ReactNode, hint?: string) => {
    const errorId = `${inputId(name)}-error`;
    const hintId = `${inputId(name)}-hint`;
    const describedBy = [hint ? hintId : null, errors[name] ? errorId : null].filter(Boolean).join(' ') || undefined;
    return (
      <div className={`field${errors[name] ? ' invalid' : ''}`}>
        <label htmlFor={inputId(name)}>{label}</label>
        {hint && <span id={hintId} className="hint">{hint}</span>}
        {errors[name] && <span id={errorId} className="field-error" data-testid={`error-${name}`}>{errors[name]!.join(' ')}</span>}
        {input({ id: inputId(name), 'aria-invalid': errors[name] ? true : undefined, 'aria-describedby': describedBy })}
      </div>
    );
  };
  const text = (name: FieldName, label: string, options: { hint?: string; inputMode?: 'decimal' | 'numeric'; required?: boolean } = {}) =>
    field(name, label, (props) => (
      <input {...props} type="text" inputMode={options.inputMode} required={options.required} aria-required={options.required}
        value={fields[name] as string} onChange={(e) => set(name, e.target.value as never)} />
    ), options.hint);
  const moneyField = (name: FieldName, label: string) => text(name, label, { inputMode: 'decimal', hint: t('form_moneyHint', { currency, digits }) });
  const when = (name: FieldName, label: string) =>
    field(name, label, (props) => (
      <input {...props} type="datetime-local" value={fields[name] as string} onChange={(e) => set(name, e.target.value as never)} />
    ), t('form_timeHint', { zone: fields.timeZone }));
  // A group of radios or checkboxes: a fieldset with its legend; the errors describe every input of the group.
  const group = (name: FieldName, legend: string, children: (props: InputProps, index: number) => ReactNode, values: readonly string[]) => {
    const errorId = `${inputId(name)}-error`;
    return (
      <fieldset className={`choices${errors[name] ? ' invalid' : ''}`}>
        <legend>{legend}</legend>
        {errors[name] && <span id={errorId} className="field-error" data-testid={`error-${name}`}>{errors[name]!.join(' ')}</span>}
        {values.map((_, i) => children({
          id: i === 0 ? inputId(name) : `${inputId(name)}-${i}`,
          'aria-invalid': errors[name] ? true : undefined,
          'aria-describedby': errors[name] ? errorId : undefined,
        }, i))}
      </fieldset>
    );
  };
  const check = (name: 'newCustomersOnly' | 'returnOnRefund', label: string) => (
    <div className={`check${errors[name] ? ' invalid' : ''}`}>
      <input id={inputId(name)} type="checkbox" checked={fields[name]} onChange={(e) => set(name, e.target.checked)}
        aria-invalid={errors[name] ? true : undefined} aria-describedby={errors[name] ? `${inputId(name)}-error` : undefined} />
      <label htmlFor={inputId(name)}>{label}</label>
      {errors[name] && <span id={`${inputId(name)}-error`} className="field-error">{errors[name]!.join(' ')}</span>}
    </div>
  );

  if (id && !loaded) {
    return (
      <div className="campaign-form">
        <h1>{t('form_editTitle')}</h1>
        {loadError ? <p role="alert" className="error">{t('listFailed', { detail: loadError })}</p> : <p role="status">{t('loading')}</p>}
      </div>
    );
  }

  return (
    <div className="campaign-form">
      <h1>{t(id ? 'form_editTitle' : 'form_newTitle')}</h1>
      {loaded && id && (
        <p>
          {t('form_status', { status: statusWord(t, loaded.status), revision: loaded.revision })}{' '}
          <a href={`/console/campaigns/${encodeURIComponent(id)}`}
            onClick={(e) => { e.preventDefault(); navigate(`/console/campaigns/${encodeURIComponent(id)}`); }}>{t('form_open')}</a>
        </p>
      )}
      {frozen && <p className="note">{t('form_notEditable', { status: statusWord(t, loaded!.status) })}</p>}
      {errorCount > 0 && (
        <div id="form-summary" className="error-summary" role="alert" tabIndex={-1} data-testid="error-summary">
          <h2>{t('form_errorSummary', { count: errorCount })}</h2>
          {summaryTitle && <p>{summaryTitle}</p>}
          <ul>
            {order.filter((f) => errors[f]).map((f) => (
              <li key={f}>
                <a href={`#${inputId(f)}`} onClick={(e) => { e.preventDefault(); document.getElementById(inputId(f))?.focus(); }}>
                  {labelOf(t, f, currency)}: {errors[f]!.join(' ')}
                </a>
              </li>
            ))}
            {others.map((o) => <li key={o}>{o}</li>)}
          </ul>
        </div>
      )}
      <div role="status" data-testid="form-status">
        {notice?.kind === 'saved' && <p className="ok">{notice.text}</p>}
      </div>
      {notice && notice.kind !== 'saved' && (
        <div role="alert" className="error" data-testid="form-alert">
          <p>{notice.text}</p>
          {notice.kind === 'conflict' && <button type="button" onClick={() => { setNotice(null); void load(); }}>{t('form_reload')}</button>}
        </div>
      )}
      <form onSubmit={save} noValidate>
        <fieldset disabled={frozen || busy} className="sections">
          <fieldset className="section">
            <legend>{t('form_basics')}</legend>
            {text('name', t('form_name'), { required: true })}
            {group('kind', t('form_kind'), (props, i) => (
              <label key={i} className="choice"><input {...props} type="radio" name="kind" value={['amount_off', 'percent_off'][i]}
                checked={fields.kind === ['amount_off', 'percent_off'][i]} onChange={(e) => set('kind', e.target.value as Fields['kind'])} />
                {t(`form_kind_${['amount_off', 'percent_off'][i]}` as Key)}</label>
            ), ['amount_off', 'percent_off'])}
            {fields.kind === 'amount_off' ? moneyField('amountOff', t('form_amountOff', { currency })) : (
              <>
                {text('percentOff', t('form_percentOff'), { inputMode: 'numeric' })}
                {moneyField('maxDiscount', t('form_maxDiscount', { currency }))}
              </>
            )}
            {moneyField('minimumSpend', t('form_minimumSpend', { currency }))}
            {field('currency', t('form_currency'), (props) => (
              <input {...props} type="text" maxLength={3} autoCapitalize="characters" value={fields.currency}
                onChange={(e) => set('currency', e.target.value.toUpperCase())} />
            ))}
            {text('categories', t('form_categories'))}
            {check('newCustomersOnly', t('form_newCustomersOnly'))}
            {group('channels', t('form_channels'), (props, i) => (
              <label key={channels[i]} className="choice"><input {...props} type="checkbox" checked={fields.channels.includes(channels[i])}
                onChange={(e) => set('channels', e.target.checked ? [...fields.channels, channels[i]] : fields.channels.filter((c) => c !== channels[i]))} />
                {t(`form_channel_${channels[i]}` as Key)}</label>
            ), channels)}
          </fieldset>
          <fieldset className="section">
            <legend>{t('form_when')}</legend>
            {field('timeZone', t('form_timeZone'), (props) => (
              <select {...props} value={fields.timeZone} onChange={(e) => set('timeZone', e.target.value)}>
                {zones.map((z) => <option key={z} value={z}>{z}</option>)}
              </select>
            ))}
            {when('claimStartsAt', t('form_claimStartsAt'))}
            {when('claimEndsAt', t('form_claimEndsAt'))}
            {group('validityType', t('form_validity'), (props, i) => (
              <label key={i} className="choice"><input {...props} type="radio" name="validityType" value={['relative', 'absolute'][i]}
                checked={fields.validityType === ['relative', 'absolute'][i]}
                onChange={(e) => set('validityType', e.target.value as Fields['validityType'])} />
                {t(`form_validity_${['relative', 'absolute'][i]}` as Key)}</label>
            ), ['relative', 'absolute'])}
            {fields.validityType === 'relative' ? text('validityDays', t('form_validityDays'), { inputMode: 'numeric' }) : (
              <>
                {when('validityFrom', t('form_validityFrom'))}
                {when('validityTo', t('form_validityTo'))}
              </>
            )}
          </fieldset>
          <fieldset className="section">
            <legend>{t('form_limits')}</legend>
            {text('totalQuantity', t('form_totalQuantity'), { inputMode: 'numeric', required: true })}
            {text('perCustomerLimit', t('form_perCustomerLimit'), { inputMode: 'numeric' })}
            {moneyField('budget', t('form_budget', { currency }))}
            {text('stockShards', t('form_stockShards'), { inputMode: 'numeric' })}
            {check('returnOnRefund', t('form_returnOnRefund'))}
          </fieldset>
          <fieldset className="section">
            <legend>{t('form_reminders')}</legend>
            {group('remindersMode', t('form_remindersMode'), (props, i) => (
              <label key={i} className="choice"><input {...props} type="radio" name="remindersMode" value={['default', 'custom', 'none'][i]}
                checked={fields.remindersMode === ['default', 'custom', 'none'][i]}
                onChange={(e) => set('remindersMode', e.target.value as Fields['remindersMode'])} />
                {t(`form_reminders_${['default', 'custom', 'none'][i]}` as Key)}</label>
            ), ['default', 'custom', 'none'])}
            {fields.remindersMode === 'custom' && (
              <>
                {text('offsetsHours', t('form_offsetsHours'))}
                {text('holdoutPercent', t('form_holdoutPercent'), { inputMode: 'numeric' })}
              </>
            )}
          </fieldset>
          <button type="submit" className="primary">{busy ? t('form_saving') : t('form_save')}</button>
        </fieldset>
      </form>
      {id && loaded?.status === 'draft' && (
        <section aria-labelledby="submit-title" className="section submit">
          <h2 id="submit-title">{t('form_submitTitle')}</h2>
          <p id="submit-hint">{dirty ? t('form_saveFirst') : t('form_submitHint')}</p>
          <button type="button" disabled={dirty || busy} aria-describedby="submit-hint" onClick={() => void submit()}>{t('form_submit')}</button>
        </section>
      )}
    </div>
  );
}

type InputProps = { id: string; 'aria-invalid'?: true; 'aria-describedby'?: string };

function labelOf(t: Translate, f: FieldName, currency: string): string {
  const keys: Record<FieldName, Key> = {
    name: 'form_name', kind: 'form_kind', amountOff: 'form_amountOff', percentOff: 'form_percentOff', maxDiscount: 'form_maxDiscount',
    minimumSpend: 'form_minimumSpend', currency: 'form_currency', categories: 'form_categories', newCustomersOnly: 'form_newCustomersOnly',
    channels: 'form_channels', timeZone: 'form_timeZone', claimStartsAt: 'form_claimStartsAt', claimEndsAt: 'form_claimEndsAt',
    validityType: 'form_validity', validityDays: 'form_validityDays', validityFrom: 'form_validityFrom', validityTo: 'form_validityTo',
    totalQuantity: 'form_totalQuantity', perCustomerLimit: 'form_perCustomerLimit', budget: 'form_budget', stockShards: 'form_stockShards',
    returnOnRefund: 'form_returnOnRefund', remindersMode: 'form_remindersMode', offsetsHours: 'form_offsetsHours', holdoutPercent: 'form_holdoutPercent',
  };
  return t(keys[f], { currency });
}

function statusWord(t: Translate, status: string): string {
  return t(`status_${status}` as Key);
}

function problemText(problem: Problem | null, status: number): string {
  return [problem?.title, problem?.detail].filter(Boolean).join(' ') || `HTTP ${status}`;
}
