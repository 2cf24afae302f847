import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import {
  BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, LineController, LineElement, PointElement, Tooltip,
  type ChartConfiguration,
} from 'chart.js';
import type { CampaignView, DetailProps } from './CampaignDetail';
import type { DetailTranslate } from './words/detail';
import { failedRead, getJson } from './session';
import { count, duration, instant, money } from './format';

// Tree-shaken: only the bar and line charts this page draws, their scales, tooltips and legend (docs/console.md, "Budgets").
Chart.register(BarController, BarElement, LineController, LineElement, PointElement, CategoryScale, LinearScale, Tooltip, Legend);
Chart.defaults.font.family = "system-ui, 'Noto Sans CJK SC', 'PingFang SC', sans-serif";

// GET /api/campaigns/{id}/stats (Stats/GetCampaignStats.cs, docs/stats.md): by local day of the campaign's time zone, the
// last 7 days to today (the API's default range).
interface Figures { claims: number; locks: number; redemptions: number; refunds: number; discount: number; gmv: number }
interface Stats {
  timeZone: string;
  currency: string;
  from: string;
  to: string;
  asOf: string | null;
  lagSeconds: number | null;
  series: { day: string; figures: Figures }[];
  totals: Figures;
  redemptionRate: number | null;
  funnel: { claimed: number; locked: number; redeemed: number; refunded: number; lockRate: number | null; redeemRate: number | null; refundRate: number | null };
  budget: { total: number; left: number; reserved: number; spent: number; burnPerDay: number; exhaustsOn: string | null } | null;
  roi: number | null;
  reminders: {
    offsetsHours: number[]; holdoutPercent: number;
    reminded: { claimed: number; redeemed: number; redemptionRate: number | null };
    holdout: { claimed: number; redeemed: number; redemptionRate: number | null };
    uplift: number | null;
  } | null;
}

// One series of a chart: its label, its values (counts, or money in minor units), how to show one value.
interface Series { label: string; values: (number | null)[]; show: (v: number) => string; color: string; kind?: 'bar' | 'line'; dashed?: boolean }

export function DetailStats({ session, t, locale, onUnauthorized, campaign, version }: DetailProps & { campaign: CampaignView; version: number }) {
  const [stats, setStats] = useState<Stats | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback((signal?: AbortSignal) => {
    setError(null);
    getJson<Stats>(session, `/api/campaigns/${encodeURIComponent(campaign.id)}/stats`, signal)
      .then(setStats)
      .catch(failedRead(signal, onUnauthorized, setError));
  }, [session, campaign.id, onUnauthorized]);

  useEffect(() => {
    const abort = new AbortController();
    load(abort.signal);
    return () => abort.abort();
  }, [load, version]);

  const currency = stats?.currency ?? campaign.terms.currency;
  const zone = stats?.timeZone ?? campaign.terms.timeZone;
  const cash = useCallback((minor: number) => money(minor, currency, locale), [currency, locale]);
  const num = useCallback((v: number) => count(v, locale), [locale]);
  const rate = (v: number | null) => (v == null ? '—' : new Intl.NumberFormat(locale, { style: 'percent', maximumFractionDigits: 2 }).format(v));
  // A local date ("2026-12-02") as the reader writes dates; read as UTC midnight and shown in UTC, so it stays that day.
  const day = useCallback((d: string, year = false) => new Intl.DateTimeFormat(locale, { timeZone: 'UTC', year: year ? 'numeric' : undefined, month: 'short', day: 'numeric' })
    .format(new Date(`${d}T00:00:00Z`)), [locale]);

  const charts = useMemo(() => {
    if (!stats) return null;
    const days = stats.series.map((p) => p.day);
    const daily = {
      counts: {
        labels: days.map((d) => day(d)), keys: days,
        series: [
          { label: t('claims'), values: stats.series.map((p) => p.figures.claims), show: num, color: '#0b4f9c' },
          { label: t('redemptions'), values: stats.series.map((p) => p.figures.redemptions), show: num, color: '#c05a00' },
        ] as Series[],
      },
      money: {
        labels: days.map((d) => day(d)), keys: days,
        series: [
          { label: t('gmv'), values: stats.series.map((p) => p.figures.gmv), show: cash, color: '#1b7a3d' },
          { label: t('discount'), values: stats.series.map((p) => p.figures.discount), show: cash, color: '#8a1c7c' },
        ] as Series[],
      },
    };
    // Budget left at the end of each day: today's (live) plus the net discount given on the days after it. Top-ups and
    // what open locks reserve are not in the daily figures, so the past is drawn at today's total (docs/console.md).
    let burn = null as null | { labels: string[]; keys: string[]; series: Series[] };
    if (stats.budget) {
      const left: number[] = [];
      let after = 0;
      for (let i = days.length - 1; i >= 0; i--) {
        left[i] = stats.budget.left + after;
        after += stats.series[i].figures.discount;
      }
      const keys = [...days];
      const projection: (number | null)[] = days.map((_, i) => (i === days.length - 1 ? stats.budget!.left : null));
      const leftValues: (number | null)[] = [...left];
      if (stats.budget.exhaustsOn && stats.budget.exhaustsOn > stats.to) {
        keys.push(stats.budget.exhaustsOn);
        projection.push(0);
        leftValues.push(null);
      }
      // With the year: the projection may end in another one.
      burn = {
        labels: keys.map((k) => day(k, true)), keys,
        series: [
          { label: t('detail_budgetLeft'), values: leftValues, show: cash, color: '#12355b', kind: 'line' },
          { label: t('detail_projection'), values: projection, show: cash, color: '#a4001d', kind: 'line', dashed: true },
        ],
      };
    }
    return { daily, burn };
  }, [stats, t, num, cash, day]);

  return (
    <section aria-labelledby="stats-title" className="panel">
      <h2 id="stats-title">{t('detail_figures')}</h2>
      {error && (
        <div role="alert" className="error">
          <p>{t('loadFailed', { detail: error })}</p>
          <button type="button" onClick={() => load()}>{t('retry')}</button>
        </div>
      )}
      {!stats && !error && <p role="status">{t('loading')}</p>}
      {stats && charts && (
        <div data-testid="stats">
          <p className="as-of" data-testid="stats-as-of">
            {stats.asOf
              ? t('asOf', { time: instant(stats.asOf, zone, locale), lag: duration(stats.lagSeconds ?? 0, locale), zone })
              : t('notComputed')}
          </p>
          <p className="as-of">{t('detail_range', { from: day(stats.from, true), to: day(stats.to, true) })}</p>
          <h3>{t('detail_budgetBurn')}</h3>
          {stats.budget && charts.burn ? (
            <>
              <dl className="facts compact" data-testid="budget">
                <div><dt>{t('budget')}</dt><dd data-value={stats.budget.total}>{cash(stats.budget.total)}</dd></div>
                <div><dt>{t('budgetLeft')}</dt><dd data-value={stats.budget.left}>{cash(stats.budget.left)}</dd></div>
                <div><dt>{t('detail_reserved')}</dt><dd data-value={stats.budget.reserved}>{cash(stats.budget.reserved)}</dd></div>
                <div><dt>{t('detail_spent')}</dt><dd data-value={stats.budget.spent}>{cash(stats.budget.spent)}</dd></div>
                <div><dt>{t('detail_burnPerDay')}</dt><dd data-value={stats.budget.burnPerDay}>{cash(Math.round(stats.budget.burnPerDay))}</dd></div>
                <div><dt>{t('detail_exhaustsOn', { zone })}</dt><dd data-value={stats.budget.exhaustsOn ?? ''} data-testid="exhausts-on">
                  {stats.budget.exhaustsOn ? day(stats.budget.exhaustsOn, true) : t('detail_notBurning')}</dd></div>
              </dl>
              <ChartFigure id="burn" title={t('detail_budgetBurnChart')} t={t} {...charts.burn} />
            </>
          ) : <p>{campaign.terms.budget != null ? t('detail_budgetFromLaunch', { amount: cash(campaign.terms.budget) }) : t('noBudget')}</p>}
          <h3>{t('detail_daily')}</h3>
          <div className="charts">
            <ChartFigure id="daily-counts" title={t('detail_dailyCounts')} t={t} {...charts.daily.counts} />
            <ChartFigure id="daily-money" title={t('detail_dailyMoney', { currency: stats.currency })} t={t} {...charts.daily.money} />
          </div>
          <h3>{t('detail_funnel')}</h3>
          <div className="scroll">
            <table data-testid="funnel">
              <caption className="visually-hidden">{t('detail_funnel')}</caption>
              <thead><tr><th scope="col">{t('detail_step')}</th><th scope="col">{t('detail_coupons')}</th><th scope="col">{t('detail_rate')}</th></tr></thead>
              <tbody>
                {([
                  ['claimed', stats.funnel.claimed, null],
                  ['locked', stats.funnel.locked, stats.funnel.lockRate],
                  ['redeemed', stats.funnel.redeemed, stats.funnel.redeemRate],
                  ['refunded', stats.funnel.refunded, stats.funnel.refundRate],
                ] as const).map(([step, value, r]) => (
                  <tr key={step} data-step={step}>
                    <th scope="row">{t(`detail_funnel_${step}`)}</th>
                    <td data-value={value}>{num(value)}</td>
                    <td data-value={r ?? ''}>{step === 'claimed' ? '' : rate(r)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <dl className="facts compact" data-testid="outcome">
            <div><dt>{t('detail_redemptionRate')}</dt><dd data-value={stats.redemptionRate ?? ''}>{rate(stats.redemptionRate)}</dd></div>
            <div><dt>{t('gmv')}</dt><dd data-value={stats.totals.gmv}>{cash(stats.totals.gmv)}</dd></div>
            <div><dt>{t('discount')}</dt><dd data-value={stats.totals.discount}>{cash(stats.totals.discount)}</dd></div>
            <div><dt>{t('detail_roi')}</dt><dd data-value={stats.roi ?? ''} data-testid="roi">{stats.roi == null ? t('detail_noCost') : rate(stats.roi)}</dd></div>
          </dl>
          {stats.reminders && (
            <>
              <h3>{t('detail_reminderUplift')}</h3>
              <div className="scroll">
                <table data-testid="reminders">
                  <caption className="visually-hidden">{t('detail_reminderUplift')}</caption>
                  <thead><tr><th scope="col">{t('detail_group')}</th><th scope="col">{t('detail_funnel_claimed')}</th><th scope="col">{t('detail_funnel_redeemed')}</th><th scope="col">{t('detail_redemptionRate')}</th></tr></thead>
                  <tbody>
                    {(['reminded', 'holdout'] as const).map((g) => (
                      <tr key={g}>
                        <th scope="row">{t(`detail_group_${g}`)}</th>
                        <td>{num(stats.reminders![g].claimed)}</td>
                        <td>{num(stats.reminders![g].redeemed)}</td>
                        <td>{rate(stats.reminders![g].redemptionRate)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
              <p data-testid="uplift">{t('detail_uplift', { uplift: stats.reminders.uplift == null ? '—' : rate(stats.reminders.uplift), holdout: stats.reminders.holdoutPercent })}</p>
            </>
          )}
        </div>
      )}
    </section>
  );
}

// A chart and its numbers: the canvas is an image with a name; the same values are in a table under it (a disclosure),
// for screen readers, keyboard users and the browser test (each cell carries its raw value in data-value).
function ChartFigure({ id, title, labels, keys, series, t }: {
  id: string; title: string; labels: string[]; keys: string[]; series: Series[]; t: DetailTranslate;
}) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const config: ChartConfiguration<'bar' | 'line', (number | null)[], string> = {
      type: series.some((s) => s.kind === 'line') ? 'line' : 'bar',
      data: {
        labels,
        datasets: series.map((s) => ({
          type: s.kind ?? 'bar', label: s.label, data: s.values, backgroundColor: s.color, borderColor: s.color,
          borderDash: s.dashed ? [6, 4] : [], spanGaps: false, pointRadius: 3,
        })),
      },
      options: {
        // Drawn once, without animation: nothing moves for people who asked for reduced motion, and screenshots are stable.
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        // Whole numbers only: counts, and money in minor units.
        scales: { y: { beginAtZero: true, ticks: { precision: 0, callback: (v) => series[0].show(Number(v)) } } },
        plugins: { tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${series[c.datasetIndex].show(Number(c.raw))}` } } },
      },
    };
    const chart = new Chart(canvas.current!, config as ChartConfiguration);
    return () => chart.destroy();
  }, [labels, series]);
  return (
    <figure className="chart-figure" aria-labelledby={`${id}-title`}>
      <figcaption id={`${id}-title`}>{title}</figcaption>
      <div className="chart">
        <canvas ref={canvas} role="img" aria-label={title} aria-describedby={`${id}-numbers`} />
      </div>
      <details>
        <summary>{t('detail_numbers')}</summary>
        <div className="scroll">
          <table id={`${id}-numbers`} data-testid={`chart-${id}`}>
            <caption className="visually-hidden">{title}</caption>
            <thead><tr><th scope="col">{t('detail_day')}</th>{series.map((s) => <th key={s.label} scope="col">{s.label}</th>)}</tr></thead>
            <tbody>
              {labels.map((label, i) => (
                <tr key={keys[i]} data-day={keys[i]}>
                  <th scope="row">{label}</th>
                  {series.map((s) => (
                    <td key={s.label} data-value={s.values[i] ?? ''}>{s.values[i] == null ? '—' : s.show(s.values[i]!)}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
    </figure>
  );
}
