import * as React from 'react';
import { Button } from '@jupyterlab/ui-components';

import { DescribeExperiment, DescribeRun, DescribeRunSummary, errorMessage } from '../api';
import { CompareRow, compareRuns, keyColumns } from '../compare';
import { Column, Table, stopRowClick } from '../components/Table';
import { EmptyState } from '../components/EmptyState';
import { ErrorLine, StatusLine } from '../components/ErrorLine';
import { LineChart } from '../components/LineChart';
import { ListToolbar, LoadMore } from '../components/ListToolbar';
import { KeyValues } from '../components/Details';
import { formatNumber, formatTime, orderKey, sortState, toggleOrder } from '../format';
import { usePagedList } from '../usePagedList';
import { TabProps } from './types';

const PAGE_SIZE = 50;
const METRIC_COLUMNS = 4;
const PARAM_COLUMNS = 3;
const DEFAULT_ORDER = 'attributes.start_time DESC';

export function RunsTab(props: TabProps): JSX.Element {
  const { api, active } = props;
  const [experiments, setExperiments] = React.useState<DescribeExperiment[]>([]);
  const [experimentsError, setExperimentsError] = React.useState<string | null>(null);
  const [experimentId, setExperimentId] = React.useState('');
  const [filterText, setFilterText] = React.useState('');
  const [filter, setFilter] = React.useState('');
  const [order, setOrder] = React.useState(DEFAULT_ORDER);
  const [checked, setChecked] = React.useState<string[]>([]);
  const [selected, setSelected] = React.useState<string | null>(null);
  const [comparing, setComparing] = React.useState<[string, string] | null>(null);

  React.useEffect(() => {
    api
      .experiments()
      .then(page => setExperiments(page.items))
      .catch(e => setExperimentsError(errorMessage(e)));
  }, [api]);

  const list = usePagedList(
    cursor =>
      api.runs({
        experiment_id: experimentId || null,
        filter,
        order,
        cursor,
        limit: PAGE_SIZE
      }),
    run => run.run_id,
    [api, experimentId, filter, order],
    active
  );

  const metricKeys = keyColumns(
    list.rows.map(r => r.metrics),
    METRIC_COLUMNS
  );
  const paramKeys = keyColumns(
    list.rows.map(r => r.params),
    PARAM_COLUMNS
  );

  const sortable = (key: string) => ({
    sort: sortState(order, key),
    onSort: () => setOrder(toggleOrder(order, key))
  });

  const toggleChecked = (runId: string) =>
    setChecked(prev => (prev.includes(runId) ? prev.filter(id => id !== runId) : [...prev, runId]));

  const columns: Column<DescribeRunSummary>[] = [
    {
      id: 'select',
      header: <span className="mlplat-visually-hidden">Select for comparison</span>,
      cell: run => (
        <input
          type="checkbox"
          aria-label={`Select ${run.name || run.run_id} for comparison`}
          checked={checked.includes(run.run_id)}
          onClick={stopRowClick}
          onChange={() => toggleChecked(run.run_id)}
        />
      )
    },
    { id: 'name', header: 'Name', cell: run => run.name || run.run_id.slice(0, 8) },
    { id: 'experiment', header: 'Experiment', cell: run => run.experiment },
    { id: 'status', header: 'Status', cell: run => run.status },
    { id: 'user', header: 'User', cell: run => run.user },
    {
      id: 'start',
      header: 'Start time',
      cell: run => formatTime(run.start_time),
      ...sortable('attributes.start_time')
    },
    ...metricKeys.map((key): Column<DescribeRunSummary> => ({
      id: `metric:${key}`,
      header: key,
      className: 'mlplat-num',
      cell: run => formatNumber(run.metrics[key]),
      ...sortable(orderKey('metrics', key))
    })),
    ...paramKeys.map((key): Column<DescribeRunSummary> => ({
      id: `param:${key}`,
      header: key,
      cell: run => run.params[key] ?? '',
      ...sortable(orderKey('params', key))
    }))
  ];

  const empty = filter ? (
    <EmptyState>
      No runs match the filter <code>{filter}</code>.
    </EmptyState>
  ) : (
    <EmptyState>
      No runs yet. In a notebook: <code>%mlplat experiment NAME</code>, then{' '}
      <code>%%mlplat run</code>
    </EmptyState>
  );

  return (
    <div className="mlplat-tab-body">
      <ListToolbar updated={list.updated} onRefresh={list.refresh}>
        <select
          className="jp-mod-styled"
          aria-label="Experiment"
          value={experimentId}
          onChange={event => setExperimentId(event.target.value)}
        >
          <option value="">All my teams' experiments</option>
          {experiments.map(e => (
            <option key={e.experiment_id} value={e.experiment_id}>
              {e.name}
            </option>
          ))}
        </select>
      </ListToolbar>
      <div className="mlplat-toolbar">
        <input
          className="jp-mod-styled mlplat-grow"
          type="search"
          aria-label="Filter"
          placeholder="metrics.auc > 0.8 (Enter to apply)"
          value={filterText}
          onChange={event => setFilterText(event.target.value)}
          onKeyDown={event => {
            if (event.key === 'Enter') {
              setFilter(filterText.trim());
            }
          }}
        />
        <Button
          small
          type="button"
          disabled={checked.length !== 2}
          title="Select exactly two runs to compare them"
          onClick={() => setComparing([checked[0], checked[1]])}
        >
          Compare
        </Button>
      </div>
      <ErrorLine message={experimentsError} />
      <ErrorLine message={list.error} />
      {comparing ? (
        <CompareRuns api={api} ids={comparing} onClose={() => setComparing(null)} />
      ) : null}
      {list.loading && list.rows.length === 0 ? (
        <p className="mlplat-note">Loading runs…</p>
      ) : list.rows.length === 0 && !list.error ? (
        empty
      ) : (
        <Table
          caption="Runs"
          columns={columns}
          rows={list.rows}
          rowKey={run => run.run_id}
          selected={selected}
          onSelect={key => setSelected(key === selected ? null : key)}
        />
      )}
      <LoadMore hasMore={list.hasMore} loading={list.loadingMore} onLoadMore={list.loadMore} />
      {selected ? <RunDetails {...props} runId={selected} /> : null}
    </div>
  );
}

function RunDetails(props: TabProps & { runId: string }): JSX.Element {
  const { api, runId, openNotebook } = props;
  const [run, setRun] = React.useState<DescribeRun | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const [status, setStatus] = React.useState<string | null>(null);
  const [opening, setOpening] = React.useState(false);

  React.useEffect(() => {
    let current = true;
    setRun(null);
    setError(null);
    setStatus(null);
    api
      .run(runId)
      .then(r => current && setRun(r))
      .catch(e => current && setError(errorMessage(e)));
    return () => {
      current = false;
    };
  }, [api, runId]);

  const open = async () => {
    setOpening(true);
    setError(null);
    try {
      const snapshot = await api.runNotebook(runId);
      const path = await openNotebook(`run-${runId}.ipynb`, snapshot.content);
      setStatus(`Opened ${path} (a copy of the notebook as the run started).`);
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setOpening(false);
    }
  };

  return (
    <section className="mlplat-details" aria-label={`Run ${runId}`}>
      <h3>{run ? run.name || run.run_id : `Run ${runId}`}</h3>
      <ErrorLine message={error} />
      <StatusLine message={status} />
      {run ? (
        <>
          <p className="mlplat-note">
            {run.experiment} · {run.status} · {run.user} · {formatTime(run.start_time)}
            {run.notebook_path ? ` · ${run.notebook_path}` : ''}
          </p>
          <div className="mlplat-actions">
            {run.mlflow_url ? (
              <a href={run.mlflow_url} target="_blank" rel="noopener noreferrer">
                Open in MLflow
              </a>
            ) : null}
            {run.has_notebook ? (
              <Button small type="button" disabled={opening} onClick={() => void open()}>
                Open notebook
              </Button>
            ) : null}
          </div>
          <h4>Parameters</h4>
          <KeyValues values={run.params} empty="No parameters." />
          <h4>Metrics</h4>
          <KeyValues
            values={Object.fromEntries(
              Object.entries(run.metrics).map(([k, v]) => [k, formatNumber(v)])
            )}
            empty="No metrics."
          />
        </>
      ) : error ? null : (
        <p className="mlplat-note">Loading…</p>
      )}
    </section>
  );
}

function CompareTable(props: {
  title: string;
  rows: CompareRow[];
  a: string;
  b: string;
}): JSX.Element {
  return (
    <div className="mlplat-table-scroll">
      <table className="mlplat-table mlplat-compare">
        <caption>{props.title}</caption>
        <thead>
          <tr>
            <th scope="col">{props.title === 'Parameters' ? 'Parameter' : 'Metric'}</th>
            <th scope="col">{props.a}</th>
            <th scope="col">{props.b}</th>
          </tr>
        </thead>
        <tbody>
          {props.rows.map(row => (
            <tr key={row.key} className={row.differs ? 'mlplat-mod-diff' : undefined}>
              <th scope="row">
                {row.key}
                {row.differs ? <span className="mlplat-visually-hidden"> (differs)</span> : null}
              </th>
              <td>{row.a}</td>
              <td>{row.b}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function CompareRuns(props: {
  api: TabProps['api'];
  ids: [string, string];
  onClose: () => void;
}): JSX.Element {
  const { api, ids } = props;
  const [runs, setRuns] = React.useState<[DescribeRun, DescribeRun] | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const [metric, setMetric] = React.useState('');

  React.useEffect(() => {
    let current = true;
    setRuns(null);
    setError(null);
    Promise.all([api.run(ids[0]), api.run(ids[1])])
      .then(([a, b]) => {
        if (current) {
          setRuns([a, b]);
          const metrics = Object.keys({ ...a.histories, ...b.histories }).sort();
          setMetric(metrics[0] ?? '');
        }
      })
      .catch(e => current && setError(errorMessage(e)));
    return () => {
      current = false;
    };
  }, [api, ids[0], ids[1]]);

  const label = (run: DescribeRun) => run.name || run.run_id.slice(0, 8);
  const diff = runs ? compareRuns(runs[0], runs[1]) : null;
  const metrics = runs ? Object.keys({ ...runs[0].histories, ...runs[1].histories }).sort() : [];

  return (
    <section className="mlplat-details" aria-label="Comparison">
      <div className="mlplat-actions">
        <h3 className="mlplat-grow">Comparison</h3>
        <Button small minimal type="button" onClick={props.onClose}>
          Close
        </Button>
      </div>
      <ErrorLine message={error} />
      {runs && diff ? (
        <>
          <CompareTable
            title="Parameters"
            rows={diff.params}
            a={label(runs[0])}
            b={label(runs[1])}
          />
          <CompareTable title="Metrics" rows={diff.metrics} a={label(runs[0])} b={label(runs[1])} />
          {metrics.length ? (
            <>
              <label className="mlplat-field">
                Chart metric{' '}
                <select
                  className="jp-mod-styled"
                  value={metric}
                  onChange={event => setMetric(event.target.value)}
                >
                  {metrics.map(m => (
                    <option key={m} value={m}>
                      {m}
                    </option>
                  ))}
                </select>
              </label>
              <LineChart
                metric={metric}
                series={runs.map(run => ({
                  label: label(run),
                  points: run.histories[metric] ?? []
                }))}
              />
            </>
          ) : (
            <p className="mlplat-note">These runs logged no metric history.</p>
          )}
        </>
      ) : error ? null : (
        <p className="mlplat-note">Loading both runs…</p>
      )}
    </section>
  );
}
