/**
 * Pure formatting of what the API answers, for display and for the re-run form.
 */

import type { DescribeExperiment, DescribeServedVersion, FailedCell, NotebookContent } from './api';

/** "v3 90% / v4 10%" */
export function trafficSplit(traffic: DescribeServedVersion[]): string {
  if (!traffic.length) {
    return 'no traffic';
  }
  return traffic.map(t => `v${t.version} ${t.percent}%`).join(' / ');
}

/** "v3 ready, v4 starting" */
export function serverStates(traffic: DescribeServedVersion[]): string {
  return traffic
    .map(t => {
      const restarts = t.restarts ? ` (${t.restarts} restarts)` : '';
      return `v${t.version} ${t.server}${restarts}`;
    })
    .join(', ');
}

/**
 * A time from the API as a Date. The API writes UTC with an offset; a time
 * without one is taken as UTC too, never as the browser's local time.
 */
export function parseTime(value: string | null | undefined): Date | null {
  if (!value) {
    return null;
  }
  const withZone = /([zZ]|[+-]\d\d:?\d\d)$/.test(value) ? value : `${value}Z`;
  const date = new Date(withZone);
  return isNaN(date.getTime()) ? null : date;
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

/** "2026-12-02 14:05" in local time, "" for no time. */
export function formatTime(value: string | Date | null | undefined): string {
  const date = value instanceof Date ? value : parseTime(value);
  if (!date) {
    return '';
  }
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}`
  );
}

/** An epoch-seconds time (pipeline tasks) like formatTime. */
export function formatEpochSeconds(seconds: number | null | undefined): string {
  return seconds ? formatTime(new Date(seconds * 1000)) : '';
}

/** "14:05:09", local: the panel's "updated" stamp. */
export function clockTime(date: Date): string {
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** "45 s", "3 min 20 s", "2 h 5 min"; "" when not started. */
export function formatDuration(
  start: string | null | undefined,
  end: string | null | undefined,
  now: Date = new Date()
): string {
  const from = parseTime(start);
  if (!from) {
    return '';
  }
  const to = parseTime(end) ?? now;
  const seconds = Math.max(0, Math.round((to.getTime() - from.getTime()) / 1000));
  if (seconds < 60) {
    return `${seconds} s`;
  }
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) {
    return `${minutes} min ${seconds % 60} s`;
  }
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** A metric for a table cell: integers as they are, others to 4 significant digits. */
export function formatNumber(value: number | null | undefined): string {
  if (value === null || value === undefined) {
    return '';
  }
  if (Number.isInteger(value) || !isFinite(value)) {
    return String(value);
  }
  return String(parseFloat(value.toPrecision(4)));
}

/** JSON on one line (check inputs, task outputs). */
export function compactJson(value: unknown): string {
  const text = JSON.stringify(value);
  return text === undefined ? '' : text;
}

/** The file name of a path. */
export function basename(path: string): string {
  return path.split('/').pop() || path;
}

/** "cell 7: ZeroDivisionError: division by zero" */
export function failedCellSummary(cell: FailedCell | null | undefined): string {
  if (!cell) {
    return '';
  }
  const where = typeof cell.index === 'number' ? `cell ${cell.index}` : 'a cell';
  const error = [cell.ename, cell.evalue].filter(Boolean).join(': ');
  return error ? `${where}: ${error}` : where;
}

// ---- the re-run form: one text input per parameter ----

/** A parameter's value as its input's text: JSON, so parsing it back gives the value. */
export function parameterInput(value: unknown): string {
  const text = JSON.stringify(value);
  return text === undefined ? '' : text;
}

/** An input's text as a parameter: JSON when it parses, else the text as a string. */
export function parseParameterInput(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The re-run request's parameters from the form's texts. */
export function parseParameterInputs(texts: Record<string, string>): Record<string, unknown> {
  const parameters: Record<string, unknown> = {};
  for (const [name, text] of Object.entries(texts)) {
    parameters[name] = parseParameterInput(text);
  }
  return parameters;
}

// ---- the runs table's server-side order ----

export type OrderKind = 'attributes' | 'metrics' | 'params';

/** MLflow's name of a column: metrics.auc, params.`max depth` (backticks when needed). */
export function orderKey(kind: OrderKind, name: string): string {
  const plain = /^[A-Za-z0-9_.\-/]+$/.test(name);
  return `${kind}.${plain ? name : '`' + name + '`'}`;
}

/** The order after clicking a column: descending first, then ascending, then back. */
export function toggleOrder(current: string, key: string): string {
  return current === `${key} DESC` ? `${key} ASC` : `${key} DESC`;
}

/** How a column is sorted now, for aria-sort. */
export function sortState(current: string, key: string): 'ascending' | 'descending' | 'none' {
  if (current === `${key} DESC`) {
    return 'descending';
  }
  if (current === `${key} ASC`) {
    return 'ascending';
  }
  return 'none';
}

// ---- MLflow links ----

/**
 * The MLflow UI's base address, from an experiment's link (".../#/experiments/3");
 * "" is the server's root, null: no experiment says where the UI is.
 */
export function mlflowBase(experiments: DescribeExperiment[]): string | null {
  for (const e of experiments) {
    const at = e.mlflow_url.indexOf('/#/');
    if (at >= 0) {
      return e.mlflow_url.slice(0, at);
    }
  }
  return null;
}

/**
 * The MLflow UI's page of a run: in its experiment when the experiment is known
 * (by full name, or by name within the run's team), else MLflow's direct run page;
 * "" when no experiment link tells where MLflow's UI is.
 */
export function mlflowRunUrl(
  experiments: DescribeExperiment[],
  runId: string,
  experiment = '',
  team = ''
): string {
  const base = mlflowBase(experiments);
  if (base === null || !runId) {
    return '';
  }
  const run = encodeURIComponent(runId);
  const found = experiment
    ? experiments.find(e => e.name === experiment || (team && e.name === `${team}/${experiment}`))
    : undefined;
  if (found) {
    return `${base}/#/experiments/${encodeURIComponent(found.experiment_id)}/runs/${run}`;
  }
  return `${base}/#/runs/${run}`;
}

/**
 * The fields Jupyter's contents manager needs before it saves a notebook: an old or
 * hand-written file may lack `metadata` (the save then fails with "'metadata'").
 */
export function completed(content: NotebookContent): NotebookContent {
  const given = content as Record<string, unknown>;
  return {
    nbformat: 4,
    nbformat_minor: 5,
    cells: [],
    ...given,
    metadata: given.metadata && typeof given.metadata === 'object' ? given.metadata : {}
  } as NotebookContent;
}
