import type { DescribeMe, MlplatApi, NotebookContent } from '../api';

/** Saves a notebook as mlplat-views/<name> and opens it; resolves to its path. */
export type OpenNotebook = (name: string, content: NotebookContent) => Promise<string>;

export interface TabProps {
  api: MlplatApi;
  /** Who the user is (null until GET api/me answers, or if it failed). */
  me: DescribeMe | null;
  /** The tab is shown and the panel is visible: poll its first page. */
  active: boolean;
  openNotebook: OpenNotebook;
}

export const ACTIVE_STATUSES = new Set(['queued', 'running']);
