import { chartScale, compareRuns, keyColumns, polylinePoints } from '../compare';

describe('keyColumns', () => {
  it('picks the keys most rows have, ties by name, at most max', () => {
    const rows = [
      { auc: 1, loss: 1 },
      { auc: 1, f1: 1 },
      { auc: 1, loss: 1, acc: 1 }
    ];
    expect(keyColumns(rows, 2)).toEqual(['auc', 'loss']);
    expect(keyColumns(rows, 10)).toEqual(['auc', 'loss', 'acc', 'f1']);
    expect(keyColumns([], 3)).toEqual([]);
  });
});

describe('compareRuns', () => {
  it('lines up params and metrics of both runs and marks the differences', () => {
    const a = { params: { depth: '3', lr: '0.1' }, metrics: { auc: 0.8, f1: 0.123456 } };
    const b = {
      params: { depth: '3', lr: '0.2', seed: '1' },
      metrics: { auc: 0.8, f1: 0.123457, loss: 1 - 0.7 }
    };
    const diff = compareRuns(a, b);
    expect(diff.params).toEqual([
      { key: 'depth', a: '3', b: '3', differs: false },
      { key: 'lr', a: '0.1', b: '0.2', differs: true },
      { key: 'seed', a: '', b: '1', differs: true }
    ]);
    expect(diff.metrics).toEqual([
      { key: 'auc', a: '0.8', b: '0.8', differs: false },
      { key: 'f1', a: '0.1235', b: '0.1235', differs: true },
      { key: 'loss', a: '', b: '0.3', differs: true }
    ]);
  });
});

describe('chart', () => {
  const box = { width: 120, height: 70, padding: 10 };

  it('shares one scale across series', () => {
    const scale = chartScale([
      [
        { step: 0, value: 1, timestamp: 0 },
        { step: 10, value: 3, timestamp: 0 }
      ],
      [{ step: 5, value: 0, timestamp: 0 }]
    ]);
    expect(scale).toEqual({ minStep: 0, maxStep: 10, minValue: 0, maxValue: 3 });
    expect(chartScale([[], []])).toBeNull();
  });

  it('maps steps to x and larger values upwards, in step order', () => {
    const scale = { minStep: 0, maxStep: 10, minValue: 0, maxValue: 1 };
    const points = [
      { step: 10, value: 1, timestamp: 0 },
      { step: 0, value: 0, timestamp: 0 },
      { step: 5, value: 0.5, timestamp: 0 }
    ];
    expect(polylinePoints(points, scale, box)).toBe('10,60 60,35 110,10');
  });

  it('draws a flat or single-point series in the middle instead of dividing by zero', () => {
    const scale = { minStep: 3, maxStep: 3, minValue: 2, maxValue: 2 };
    expect(polylinePoints([{ step: 3, value: 2, timestamp: 0 }], scale, box)).toBe('60,35');
  });
});
