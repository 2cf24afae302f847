import { useCallback, useEffect, useState, type FormEvent } from 'react';
import type { Key } from './i18n';
import type { CampaignView, DetailProps } from './CampaignDetail';
import { ApiError, failedRead, getJson, postJson } from './session';
import { instant } from './format';

// The campaign's media (Media/*.cs, docs/media.md): GET .../media lists every item (pending, ready with renditions,
// refused with why); an upload is three calls: POST .../media announces it and answers a short-lived link, the browser
// PUTs the file straight to Blob storage (CORS allows this origin, the CSP's connect-src that storage), then
// POST .../media/{mediaId}/complete checks it and publishes the renditions.
interface Rendition { name: string; url: string; contentType: string; width?: number | null; height?: number | null; bytes: number }
interface MediaItem {
  mediaId: string; kind: string; contentType: string; length: number; state: string;
  renditions: Rendition[]; refusal?: { type: string; detail: string } | null; createdAt: string; createdBy: string;
}
interface MediaUpload { mediaId: string; uploadUrl: string; method: string; headers: Record<string, string>; expiresAt: string }

const kinds = ['banner', 'thumbnail', 'poster', 'rules'] as const;

export function DetailMedia({ session, t, locale, onUnauthorized, campaign, onChanged }: DetailProps & { campaign: CampaignView; onChanged: () => void }) {
  const [items, setItems] = useState<MediaItem[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [kind, setKind] = useState<string>('banner');
  const [file, setFile] = useState<File | null>(null);
  const [busy, setBusy] = useState(false);
  const [inputKey, setInputKey] = useState(0);
  const [outcome, setOutcome] = useState<{ ok: boolean; text: string } | null>(null);
  const path = `/api/campaigns/${encodeURIComponent(campaign.id)}/media`;

  const failed = useCallback((e: unknown, words: (detail: string) => string) => {
    if (e instanceof ApiError && e.status === 401) onUnauthorized();
    else setOutcome({ ok: false, text: words((e as Error).message) });
  }, [onUnauthorized]);

  const load = useCallback((signal?: AbortSignal) => {
    setError(null);
    return getJson<{ items: MediaItem[] }>(session, path, signal)
      .then((list) => setItems(list.items))
      .catch(failedRead(signal, onUnauthorized, setError));
  }, [session, path, onUnauthorized]);

  useEffect(() => {
    const abort = new AbortController();
    load(abort.signal);
    return () => abort.abort();
  }, [load]);

  const upload = async (event: FormEvent) => {
    event.preventDefault();
    if (!file) return;
    setBusy(true);
    setOutcome(null);
    try {
      const link = await postJson<MediaUpload>(session, path, { kind, contentType: file.type, length: file.size });
      // Straight to storage with exactly the headers the link needs; no bearer token goes there (the link is the grant).
      const put = await fetch(link.uploadUrl, { method: link.method, headers: link.headers, body: file });
      if (!put.ok) throw new ApiError(put.status, t('detail_storageRefused', { status: put.status }));
      try {
        await postJson<MediaItem>(session, `${path}/${encodeURIComponent(link.mediaId)}/complete`, {});
        setOutcome({ ok: true, text: t('detail_uploaded', { name: file.name }) });
      } catch (e) {
        // A refused upload (422: wrong type, too large, ...) stays listed as refused with its reason.
        failed(e, (detail) => t('detail_uploadRefused', { name: file.name, detail }));
      }
      setFile(null);
      setInputKey((k) => k + 1); // a new, empty file input
    } catch (e) {
      failed(e, (detail) => t('detail_uploadFailed', { detail }));
    } finally {
      setBusy(false);
      await load();
      onChanged();
    }
  };

  const remove = async (item: MediaItem) => {
    setOutcome(null);
    const response = await fetch(`${path}/${encodeURIComponent(item.mediaId)}`, { method: 'DELETE', headers: { Authorization: `Bearer ${session.token}` } });
    if (response.status === 401) return onUnauthorized();
    if (!response.ok) {
      const problem = (await response.json().catch(() => ({}))) as { title?: string; detail?: string };
      setOutcome({ ok: false, text: t('detail_deleteFailed', { detail: [problem.title, problem.detail].filter(Boolean).join(' ') || `HTTP ${response.status}` }) });
    } else {
      setOutcome({ ok: true, text: t('detail_deleted', { kind: t(`detail_kind_${item.kind}` as Key) }) });
    }
    await load();
    onChanged();
  };

  const zone = campaign.terms.timeZone;
  return (
    <section aria-labelledby="media-title" className="panel">
      <h2 id="media-title">{t('detail_media')}</h2>
      <form className="upload" onSubmit={upload}>
        <label htmlFor="media-kind">{t('detail_mediaKind')}</label>
        <select id="media-kind" value={kind} onChange={(e) => setKind(e.target.value)}>
          {kinds.map((k) => <option key={k} value={k}>{t(`detail_kind_${k}` as Key)}</option>)}
        </select>
        <label htmlFor="media-file">{t('detail_mediaFile')}</label>
        <input key={inputKey} id="media-file" type="file" accept={kind === 'rules' ? 'application/pdf' : 'image/png,image/jpeg,image/webp'}
          onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
        <button type="submit" disabled={!file || busy}>{busy ? t('detail_uploading') : t('detail_upload')}</button>
      </form>
      <p role="status" data-testid="media-outcome" className={outcome && !outcome.ok ? 'error' : undefined}>{outcome?.text ?? ''}</p>
      {error && <p role="alert" className="error">{t('listFailed', { detail: error })}</p>}
      {!items && !error && <p>{t('loading')}</p>}
      {items && items.length === 0 && <p>{t('detail_noMedia')}</p>}
      {items && items.length > 0 && (
        <ul className="gallery" data-testid="media">
          {items.map((item) => {
            // The smallest image rendition is the thumbnail; a PDF links to itself.
            const image = item.renditions.filter((r) => r.contentType.startsWith('image/') && r.width).sort((a, b) => a.width! - b.width!)[0];
            const pdf = item.renditions.find((r) => r.contentType === 'application/pdf');
            const label = `${t(`detail_kind_${item.kind}` as Key)} ${item.mediaId}`;
            return (
              <li key={item.mediaId} className={`media state-${item.state}`} data-media-id={item.mediaId} data-state={item.state}>
                {image && <img src={image.url} alt={label} width={image.width ?? undefined} height={image.height ?? undefined} />}
                {pdf && <a href={pdf.url}>{t('detail_openPdf')}</a>}
                <p><strong>{t(`detail_kind_${item.kind}` as Key)}</strong> · <span className="state">{t(`detail_state_${item.state}` as Key)}</span></p>
                {item.refusal && <p className="error" data-testid="refusal">{item.refusal.detail}</p>}
                <p className="meta">{item.createdBy} · {instant(item.createdAt, zone, locale)}</p>
                <button type="button" onClick={() => remove(item)} aria-label={t('detail_deleteMedia', { name: label })}>{t('detail_delete')}</button>
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}
