import * as React from 'react';

/** What an empty list means and what to do next. */
export function EmptyState(props: { children: React.ReactNode }): JSX.Element {
  return <p className="mlplat-empty">{props.children}</p>;
}
