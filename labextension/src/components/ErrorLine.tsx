import * as React from 'react';

/** The sentence of a failed call, shown where it happened. */
export function ErrorLine(props: { message: string | null | undefined }): JSX.Element | null {
  if (!props.message) {
    return null;
  }
  return (
    <p role="alert" className="mlplat-error">
      {props.message}
    </p>
  );
}

/** The outcome of an action, announced politely. */
export function StatusLine(props: { message: string | null | undefined }): JSX.Element | null {
  if (!props.message) {
    return null;
  }
  return (
    <p role="status" className="mlplat-status">
      {props.message}
    </p>
  );
}
