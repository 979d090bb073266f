/**
 * Pure helpers of the Runs tab: which metric and parameter columns a page shows,
 * the side-by-side comparison of two runs, and the chart's scaling.
 */

import type { DescribeRunSummary, MetricPoint } from './api';
import { formatNumber } from './format';

/**
 * The keys most runs of the page have (ties by name), at most `max`: a page of
 * mixed experiments shows the columns that say something about most rows.
 */
export function keyColumns(maps: Array<Record<string, unknown>>, max: number): string[] {
  const counts = new Map<string, number>();
  for (const map of maps) {
    for (const key of Object.keys(map)) {
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .slice(0, max)
    .map(([key]) => key);
}

export interface CompareRow {
  key: string;
  a: string;
  b: string;
  differs: boolean;
}

function compareMaps(
  a: Record<string, unknown>,
  b: Record<string, unknown>,
  show: (v: unknown) => string
): CompareRow[] {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return keys.map(key => {
    const va = key in a ? show(a[key]) : '';
    const vb = key in b ? show(b[key]) : '';
    return { key, a: va, b: vb, differs: !(key in a && key in b) || a[key] !== b[key] };
  });
}

/**
 * Params and metrics of two runs side by side; `differs` where the values are not the
 * same (compared exactly, even when they show the same rounded).
 */
export function compareRuns(
  a: Pick<DescribeRunSummary, 'params' | 'metrics'>,
  b: Pick<DescribeRunSummary, 'params' | 'metrics'>
): { params: CompareRow[]; metrics: CompareRow[] } {
  return {
    params: compareMaps(a.params, b.params, v => String(v)),
    metrics: compareMaps(a.metrics, b.metrics, v => formatNumber(v as number))
  };
}

export interface ChartBox {
  width: number;
  height: number;
  padding: number;
}

export interface ChartScale {
  minStep: number;
  maxStep: number;
  minValue: number;
  maxValue: number;
}

/** The common step and value range of several series (so they share the axes). */
export function chartScale(series: MetricPoint[][]): ChartScale | null {
  const points = series.flat();
  if (!points.length) {
    return null;
  }
  const steps = points.map(p => p.step);
  const values = points.map(p => p.value);
  return {
    minStep: Math.min(...steps),
    maxStep: Math.max(...steps),
    minValue: Math.min(...values),
    maxValue: Math.max(...values)
  };
}

/**
 * The SVG polyline `points` of a series: step to x, value to y (up is larger).
 * A flat range is drawn in the middle rather than divided by zero.
 */
export function polylinePoints(points: MetricPoint[], scale: ChartScale, box: ChartBox): string {
  const innerW = box.width - 2 * box.padding;
  const innerH = box.height - 2 * box.padding;
  const stepSpan = scale.maxStep - scale.minStep;
  const valueSpan = scale.maxValue - scale.minValue;
  return [...points]
    .sort((p, q) => p.step - q.step)
    .map(p => {
      const x =
        box.padding + (stepSpan ? ((p.step - scale.minStep) / stepSpan) * innerW : innerW / 2);
      const y =
        box.padding +
        (valueSpan ? (1 - (p.value - scale.minValue) / valueSpan) * innerH : innerH / 2);
      return `${round(x)},${round(y)}`;
    })
    .join(' ');
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
