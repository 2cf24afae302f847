import { useCallback, useEffect, useState } from 'react';
import { failedRead, getJson, type Session } from './session';

/** A page of a list route: its items and the token of the next page (null on the last). */
export interface Page<T> { items: T[]; continuationToken?: string | null }

/** The default page-to-items: one function for every render (a new one each time would reload the list each time). */
const itemsOf = <T,>(page: Page<unknown>): T[] => page.items as T[];

/**
 * A paged list read from `path` (its query without the page token), as the campaigns, approvals and payouts pages show
 * one: the first page on mount and whenever `path` changes (a filter: page tokens fit their own query only, so the list
 * starts again), then `more()` appends the next page. `toItems` turns a page into the items shown (default: its items);
 * pass a function defined outside the component, or the list reloads on every render.
 */
export function usePagedList<T, P extends Page<unknown> = Page<T>>(session: Session, path: string, onUnauthorized: () => void,
  toItems: (page: P) => T[] = itemsOf) {
  const [items, setItems] = useState<T[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const load = useCallback((token: string | null, signal?: AbortSignal) => {
    const url = token ? `${path}${path.includes('?') ? '&' : '?'}continuationToken=${encodeURIComponent(token)}` : path;
    setBusy(true);
    setError(null);
    getJson<P>(session, url, signal)
      .then((page) => {
        const shown = toItems(page);
        setItems((before) => (token && before ? [...before, ...shown] : shown));
        setNext(page.continuationToken ?? null);
      })
      .catch(failedRead(signal, onUnauthorized, setError))
      .finally(() => { if (!signal?.aborted) setBusy(false); });
  }, [session, path, onUnauthorized, toItems]);

  useEffect(() => {
    const abort = new AbortController();
    setItems(null);
    load(null, abort.signal);
    return () => abort.abort();
  }, [load]);

  const more = useCallback(() => { if (next) load(next); }, [load, next]);
  return { items, setItems, next, more, error, busy };
}
