import * as React from 'react';
import { Button } from '@jupyterlab/ui-components';

import { clockTime } from '../format';

export interface ListToolbarProps {
  updated: Date | null;
  onRefresh: () => void;
  children?: React.ReactNode;
}

/** A list's filters (children), its "updated HH:MM:SS" stamp and its Refresh button. */
export function ListToolbar(props: ListToolbarProps): JSX.Element {
  return (
    <div className="mlplat-toolbar">
      {props.children}
      <span className="mlplat-updated">
        {props.updated ? `updated ${clockTime(props.updated)}` : ''}
      </span>
      <Button small type="button" onClick={props.onRefresh}>
        Refresh
      </Button>
    </div>
  );
}

/** "Load more" while the server has more pages. */
export function LoadMore(props: {
  hasMore: boolean;
  loading: boolean;
  onLoadMore: () => void;
}): JSX.Element | null {
  if (!props.hasMore) {
    return null;
  }
  return (
    <div className="mlplat-load-more">
      <Button small type="button" disabled={props.loading} onClick={props.onLoadMore}>
        Load more
      </Button>
    </div>
  );
}
