import * as React from 'react';

import { JOB_STATUSES, JobStatus } from '../api';

/** The status filter of the Jobs and Pipelines lists ('' for all). */
export function StatusSelect(props: {
  value: JobStatus | '';
  onChange: (status: JobStatus | '') => void;
}): JSX.Element {
  return (
    <select
      className="jp-mod-styled"
      aria-label="Status"
      value={props.value}
      onChange={event => props.onChange(event.target.value as JobStatus | '')}
    >
      <option value="">All statuses</option>
      {JOB_STATUSES.map(s => (
        <option key={s} value={s}>
          {s}
        </option>
      ))}
    </select>
  );
}
