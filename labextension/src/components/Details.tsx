import * as React from 'react';

import { compactJson } from '../format';

/** A list of "key: value" lines (provenance, parameters); objects as compact JSON. */
export function KeyValues(props: { values: Record<string, unknown>; empty?: string }): JSX.Element {
  const entries = Object.entries(props.values);
  if (!entries.length) {
    return <p className="mlplat-note">{props.empty ?? 'None.'}</p>;
  }
  return (
    <dl className="mlplat-kv">
      {entries.map(([key, value]) => (
        <div key={key} className="mlplat-kv-line">
          <dt>{key}:</dt>
          <dd>{typeof value === 'string' ? value : compactJson(value)}</dd>
        </div>
      ))}
    </dl>
  );
}

/** A log or JSON text block with a heading. */
export function TextBlock(props: { title: string; text: string; note?: string }): JSX.Element {
  return (
    <section className="mlplat-text-block" aria-label={props.title}>
      <h4>{props.title}</h4>
      {props.note ? <p className="mlplat-note">{props.note}</p> : null}
      <pre className="mlplat-pre">{props.text}</pre>
    </section>
  );
}
