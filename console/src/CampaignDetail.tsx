import type { PageProps } from './App';

// /console/campaigns/{id}: a campaign's terms, actions, figures, media and audit trail (docs/console.md).
export function CampaignDetail({ t, id }: PageProps & { id: string }) {
  return (
    <div className="campaign-detail">
      <h1>{t('detail_title')}</h1>
      <code>{id}</code>
    </div>
  );
}
