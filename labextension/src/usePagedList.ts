/**
 * A server-paginated list for a tab: the first page on mount and when `deps` change,
 * "Load more" appends the next page, and while `active` the first page is fetched
 * again every few seconds. Only the first page is refetched: later pages stay as
 * loaded, so a long list is never reloaded as a whole.
 */

import { useCallback, useEffect, useRef, useState } from 'react';

import { Page, errorMessage, flattenPages, withFreshFirstPage } from './api';

export const REFRESH_INTERVAL_MS = 5000;

export interface PagedList<T> {
  rows: T[];
  hasMore: boolean;
  /** The first page of the current query is not there yet (rows may be the previous query's). */
  loading: boolean;
  loadingMore: boolean;
  error: string | null;
  updated: Date | null;
  refresh: () => void;
  loadMore: () => void;
}

export function usePagedList<T>(
  fetchPage: (cursor: string | null) => Promise<Page<T>>,
  key: (row: T) => string,
  deps: unknown[],
  active: boolean
): PagedList<T> {
  const [pages, setPages] = useState<T[][]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [loadingMore, setLoadingMore] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [updated, setUpdated] = useState<Date | null>(null);

  // Answers to an older query (deps changed meanwhile) are dropped by generation.
  const generation = useRef(0);
  const firstBusy = useRef<number | null>(null);
  const pageCount = useRef(0);
  const fetchRef = useRef(fetchPage);
  fetchRef.current = fetchPage;

  const fetchFirst = useCallback(async (reset: boolean) => {
    const g = generation.current;
    if (firstBusy.current === g) {
      return;
    }
    firstBusy.current = g;
    try {
      const page = await fetchRef.current(null);
      if (g !== generation.current) {
        return;
      }
      setPages(prev => (reset ? [page.items] : withFreshFirstPage(prev, page.items)));
      // With more pages loaded, the next cursor is the last page's, not the first's.
      if (reset || pageCount.current <= 1) {
        setCursor(page.next_cursor);
      }
      pageCount.current = Math.max(pageCount.current, 1);
      setError(null);
      setUpdated(new Date());
    } catch (e) {
      if (g === generation.current) {
        setError(errorMessage(e));
        if (reset) {
          setPages([]); // the rows of the previous query would pass for this one's
        }
      }
    } finally {
      if (g === generation.current) {
        setLoading(false);
      }
      if (firstBusy.current === g) {
        firstBusy.current = null;
      }
    }
  }, []);

  useEffect(() => {
    // The rows of the previous query stay until this one's first page arrives, so a
    // new order or filter does not blank the table meanwhile.
    generation.current += 1;
    pageCount.current = 0;
    setCursor(null);
    setLoading(true);
    setError(null);
    void fetchFirst(true);
    // The caller's deps are the query: a new query starts from its first page.
  }, deps);

  const wasActive = useRef(active);
  useEffect(() => {
    if (!active) {
      wasActive.current = false;
      return;
    }
    if (!wasActive.current) {
      // Shown again after a pause: bring the first page up to date at once.
      void fetchFirst(false);
    }
    wasActive.current = true;
    const timer = setInterval(() => void fetchFirst(false), REFRESH_INTERVAL_MS);
    return () => clearInterval(timer);
  }, [active, fetchFirst]);

  const loadMore = useCallback(async () => {
    if (!cursor || loadingMore) {
      return;
    }
    const g = generation.current;
    setLoadingMore(true);
    try {
      const page = await fetchRef.current(cursor);
      if (g !== generation.current) {
        return;
      }
      setPages(prev => [...prev, page.items]);
      setCursor(page.next_cursor);
      pageCount.current += 1;
      setError(null);
    } catch (e) {
      if (g === generation.current) {
        setError(errorMessage(e));
      }
    } finally {
      setLoadingMore(false);
    }
  }, [cursor, loadingMore]);

  return {
    rows: flattenPages(pages, key),
    hasMore: cursor !== null,
    loading,
    loadingMore,
    error,
    updated,
    refresh: () => void fetchFirst(false),
    loadMore: () => void loadMore()
  };
}
