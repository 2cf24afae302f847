import type { PageProps } from './App';

// /console/commissions[/...]: commission rules, payout batches with their CSV, and the quarantined order events.
export function Commissions({ t }: PageProps & { rest: string }) {
  return (
    <div className="commissions">
      <h1>{t('commissions')}</h1>
    </div>
  );
}
