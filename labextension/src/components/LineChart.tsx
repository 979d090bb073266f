import * as React from 'react';

import type { MetricPoint } from '../api';
import { ChartBox, chartScale, polylinePoints } from '../compare';
import { formatNumber } from '../format';

export interface Series {
  label: string;
  points: MetricPoint[];
}

const BOX: ChartBox = { width: 320, height: 160, padding: 24 };

/** A metric's history of a few runs as lines on shared axes (inline SVG). */
export function LineChart(props: { metric: string; series: Series[] }): JSX.Element {
  const scale = chartScale(props.series.map(s => s.points));
  if (!scale) {
    return <p className="mlplat-note">No history of {props.metric} in these runs.</p>;
  }
  const description =
    `${props.metric} by step, ` +
    props.series.map(s => `${s.label}: ${s.points.length} points`).join('; ');
  const bottom = BOX.height - BOX.padding;
  return (
    <figure className="mlplat-chart">
      <svg
        viewBox={`0 0 ${BOX.width} ${BOX.height}`}
        role="img"
        aria-label={description}
        preserveAspectRatio="xMidYMid meet"
      >
        <line
          className="mlplat-chart-axis"
          x1={BOX.padding}
          y1={bottom}
          x2={BOX.width - BOX.padding}
          y2={bottom}
        />
        <line
          className="mlplat-chart-axis"
          x1={BOX.padding}
          y1={BOX.padding}
          x2={BOX.padding}
          y2={bottom}
        />
        <text className="mlplat-chart-label" x={2} y={BOX.padding}>
          {formatNumber(scale.maxValue)}
        </text>
        <text className="mlplat-chart-label" x={2} y={bottom}>
          {formatNumber(scale.minValue)}
        </text>
        <text className="mlplat-chart-label" x={BOX.padding} y={BOX.height - 4}>
          {scale.minStep}
        </text>
        <text
          className="mlplat-chart-label"
          x={BOX.width - BOX.padding}
          y={BOX.height - 4}
          textAnchor="end"
        >
          {scale.maxStep}
        </text>
        {props.series.map((s, i) => (
          <polyline
            key={i}
            className={`mlplat-chart-line mlplat-chart-line-${i}`}
            points={polylinePoints(s.points, scale, BOX)}
          />
        ))}
      </svg>
      <figcaption className="mlplat-chart-legend">
        {props.series.map((s, i) => (
          <span key={i} className={`mlplat-chart-key mlplat-chart-key-${i}`}>
            {s.label}
          </span>
        ))}
      </figcaption>
    </figure>
  );
}
