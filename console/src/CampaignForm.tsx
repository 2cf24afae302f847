import type { PageProps } from './App';

// /console/campaigns/new and /console/campaigns/{id}/edit: a campaign's terms, with problem+json field errors inline.
export function CampaignForm({ t, id }: PageProps & { id?: string }) {
  return (
    <div className="campaign-form">
      <h1>{t(id ? 'form_editTitle' : 'form_newTitle')}</h1>
    </div>
  );
}
