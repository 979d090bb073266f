import type { DescribeExperiment, DescribeServedVersion } from '../api';
import {
  basename,
  completed,
  clockTime,
  compactJson,
  failedCellSummary,
  formatDuration,
  formatEpochSeconds,
  formatNumber,
  formatTime,
  mlflowRunUrl,
  orderKey,
  parameterInput,
  parseParameterInput,
  parseParameterInputs,
  parseTime,
  serverStates,
  sortState,
  toggleOrder,
  trafficSplit
} from '../format';

function served(
  version: string,
  percent: number,
  server = 'ready',
  restarts = 0
): DescribeServedVersion {
  return {
    version,
    percent,
    server,
    restarts,
    approval_id: 1,
    digest: 'd',
    run_id: 'r',
    log_tail: ''
  };
}

describe('traffic', () => {
  it('writes the split of a canary as versions and shares', () => {
    expect(trafficSplit([served('3', 90), served('4', 10)])).toBe('v3 90% / v4 10%');
    expect(trafficSplit([served('3', 100)])).toBe('v3 100%');
    expect(trafficSplit([])).toBe('no traffic');
  });

  it("lists each version's server state with its restarts", () => {
    expect(serverStates([served('3', 90), served('4', 10, 'crashed', 2)])).toBe(
      'v3 ready, v4 crashed (2 restarts)'
    );
  });
});

describe('times', () => {
  it('reads a time without a zone as UTC', () => {
    expect(parseTime('2026-12-02T04:33:42')?.toISOString()).toBe('2026-12-02T04:33:42.000Z');
    expect(parseTime('2026-12-02T04:33:42.123456+02:00')?.toISOString()).toBe(
      '2026-12-02T02:33:42.123Z'
    );
    expect(parseTime('2026-12-02T04:33:42Z')?.toISOString()).toBe('2026-12-02T04:33:42.000Z');
    expect(parseTime(null)).toBeNull();
    expect(parseTime('not a time')).toBeNull();
  });

  it('formats times to the minute in the local zone (+05:30 in these tests)', () => {
    expect(formatTime('2026-03-04T05:06:07+00:00')).toBe('2026-03-04 10:36');
    expect(formatTime('2026-03-04T20:00:00Z')).toBe('2026-03-05 01:30');
    expect(formatTime(null)).toBe('');
    expect(formatEpochSeconds(0)).toBe('');
    expect(formatEpochSeconds(Date.UTC(2026, 0, 2, 3, 4) / 1000)).toBe('2026-01-02 08:34');
    expect(clockTime(new Date(Date.UTC(2026, 0, 1, 9, 5, 3)))).toBe('14:35:03');
  });

  it('shows a time written without a zone as UTC, not as local time', () => {
    expect(formatTime('2026-12-02T04:33:42')).toBe('2026-12-02 10:03');
  });

  it('formats durations, running ones up to now', () => {
    const start = '2026-01-01T00:00:00Z';
    expect(formatDuration(start, '2026-01-01T00:00:45Z')).toBe('45 s');
    expect(formatDuration(start, '2026-01-01T00:03:20Z')).toBe('3 min 20 s');
    expect(formatDuration(start, '2026-01-01T02:05:00Z')).toBe('2 h 5 min');
    expect(formatDuration(start, null, new Date('2026-01-01T00:01:00Z'))).toBe('1 min 0 s');
    expect(formatDuration(null, null)).toBe('');
  });
});

describe('values', () => {
  it('shows metrics to 4 significant digits, integers as they are', () => {
    expect(formatNumber(0.876543)).toBe('0.8765');
    expect(formatNumber(12)).toBe('12');
    expect(formatNumber(1234.5678)).toBe('1235');
    expect(formatNumber(0.5)).toBe('0.5');
    expect(formatNumber(undefined)).toBe('');
  });

  it('writes compact JSON and file names', () => {
    expect(compactJson({ a: [1, 'x'], b: null })).toBe('{"a":[1,"x"],"b":null}');
    expect(compactJson(undefined)).toBe('');
    expect(basename('work/nb/train.ipynb')).toBe('train.ipynb');
    expect(basename('train.ipynb')).toBe('train.ipynb');
  });

  it('summarises the failed cell of a job', () => {
    expect(
      failedCellSummary({
        index: 7,
        ename: 'ZeroDivisionError',
        evalue: 'division by zero',
        source: '1/0'
      })
    ).toBe('cell 7: ZeroDivisionError: division by zero');
    expect(failedCellSummary({ index: 0 })).toBe('cell 0');
    expect(failedCellSummary(null)).toBe('');
  });
});

describe('re-run parameters', () => {
  it('prefills each input with the JSON of the value', () => {
    expect(parameterInput(1)).toBe('1');
    expect(parameterInput(0.25)).toBe('0.25');
    expect(parameterInput('abc')).toBe('"abc"');
    expect(parameterInput([1, 2])).toBe('[1,2]');
    expect(parameterInput({ a: true })).toBe('{"a":true}');
    expect(parameterInput(null)).toBe('null');
  });

  it('gives back the same values from unchanged inputs', () => {
    const values = { x: 1, name: 'run 1', digits: '007', list: [1, 'a'], on: false, none: null };
    const texts = Object.fromEntries(
      Object.entries(values).map(([k, v]) => [k, parameterInput(v)])
    );
    expect(parseParameterInputs(texts)).toEqual(values);
  });

  it('parses JSON and falls back to the text as a string', () => {
    expect(parseParameterInput('2')).toBe(2);
    expect(parseParameterInput('"2"')).toBe('2');
    expect(parseParameterInput('true')).toBe(true);
    expect(parseParameterInput('hello world')).toBe('hello world');
    expect(parseParameterInput('')).toBe('');
    expect(parseParameterInput('{bad')).toBe('{bad');
  });
});

describe('runs order', () => {
  it("names columns in MLflow's syntax, quoting odd names", () => {
    expect(orderKey('metrics', 'auc')).toBe('metrics.auc');
    expect(orderKey('params', 'max_depth')).toBe('params.max_depth');
    expect(orderKey('metrics', 'val auc')).toBe('metrics.`val auc`');
    expect(orderKey('attributes', 'start_time')).toBe('attributes.start_time');
  });

  it('toggles a column between descending and ascending', () => {
    const key = 'metrics.auc';
    const first = toggleOrder('attributes.start_time DESC', key);
    expect(first).toBe('metrics.auc DESC');
    expect(toggleOrder(first, key)).toBe('metrics.auc ASC');
    expect(toggleOrder('metrics.auc ASC', key)).toBe('metrics.auc DESC');
    expect(sortState('metrics.auc ASC', key)).toBe('ascending');
    expect(sortState('metrics.auc DESC', key)).toBe('descending');
    expect(sortState('metrics.auc DESC', 'metrics.loss')).toBe('none');
  });
});

describe('MLflow links', () => {
  const experiments: DescribeExperiment[] = [
    {
      experiment_id: '3',
      name: 'alpha/churn',
      team: 'alpha',
      mlflow_url: 'http://hub:8000/services/mlflow/#/experiments/3'
    },
    {
      experiment_id: '5',
      name: 'alpha/fraud',
      team: 'alpha',
      mlflow_url: 'http://hub:8000/services/mlflow/#/experiments/5'
    }
  ];

  it('links a run in its experiment when the experiment is known', () => {
    expect(mlflowRunUrl(experiments, 'abc123', 'alpha/fraud')).toBe(
      'http://hub:8000/services/mlflow/#/experiments/5/runs/abc123'
    );
    expect(mlflowRunUrl(experiments, 'abc123', 'churn', 'alpha')).toBe(
      'http://hub:8000/services/mlflow/#/experiments/3/runs/abc123'
    );
  });

  it("uses MLflow's direct run page for an unknown experiment", () => {
    expect(mlflowRunUrl(experiments, 'abc123', 'beta/other')).toBe(
      'http://hub:8000/services/mlflow/#/runs/abc123'
    );
    expect(mlflowRunUrl(experiments, 'abc123')).toBe(
      'http://hub:8000/services/mlflow/#/runs/abc123'
    );
  });

  it('keeps a base at the root and gives no link without any experiment link', () => {
    const atRoot = [{ ...experiments[0], mlflow_url: '/#/experiments/3' }];
    expect(mlflowRunUrl(atRoot, 'r1', 'alpha/churn')).toBe('/#/experiments/3/runs/r1');
    expect(mlflowRunUrl([], 'r1', 'alpha/churn')).toBe('');
    expect(mlflowRunUrl([{ ...experiments[0], mlflow_url: '' }], 'r1')).toBe('');
  });
});

describe('completed', () => {
  it('adds the metadata, nbformat and cells a save needs, keeping what is there', () => {
    const done = completed({ cells: [{ cell_type: 'code' }], nbformat: 4 }) as Record<string, unknown>;
    expect(done.metadata).toEqual({});
    expect(done.nbformat_minor).toBe(5);
    expect(done.cells).toEqual([{ cell_type: 'code' }]);
    const kept = completed({ metadata: { kernelspec: { name: 'python3' } } }) as Record<string, unknown>;
    expect(kept.metadata).toEqual({ kernelspec: { name: 'python3' } });
    expect(completed({ metadata: null }).metadata).toEqual({});
  });
});
