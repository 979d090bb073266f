import * as React from 'react';
import { Button } from '@jupyterlab/ui-components';

import {
  DescribeExperiment,
  DescribePipelineLogs,
  DescribePipelineRun,
  JobStatus,
  PipelineTask
} from '../api';
import { Column, Table } from '../components/Table';
import { EmptyState } from '../components/EmptyState';
import { ErrorLine, StatusLine } from '../components/ErrorLine';
import { KeyValues, TextBlock } from '../components/Details';
import { ListToolbar, LoadMore } from '../components/ListToolbar';
import { StatusSelect } from '../components/StatusSelect';
import { compactJson, formatEpochSeconds, formatTime, mlflowRunUrl } from '../format';
import { useAction } from '../useAction';
import { usePagedList } from '../usePagedList';
import { ACTIVE_STATUSES, TabProps } from './types';

const PAGE_SIZE = 50;

export function PipelinesTab(props: TabProps): JSX.Element {
  const { api, active } = props;
  const [status, setStatus] = React.useState<JobStatus | ''>('');
  const [selected, setSelected] = React.useState<string | null>(null);
  const [experiments, setExperiments] = React.useState<DescribeExperiment[]>([]);

  React.useEffect(() => {
    // Only to link tasks to MLflow; without it the run ids are shown as text.
    api
      .experiments()
      .then(page => setExperiments(page.items))
      .catch(() => setExperiments([]));
  }, [api]);

  const list = usePagedList(
    cursor => api.pipelines({ status, cursor, limit: PAGE_SIZE }),
    p => String(p.id),
    [api, status],
    active
  );

  const columns: Column<DescribePipelineRun>[] = [
    { id: 'id', header: 'Id', cell: p => p.id, className: 'mlplat-num' },
    { id: 'name', header: 'Name', cell: p => p.name },
    { id: 'status', header: 'Status', cell: p => p.status },
    { id: 'mode', header: 'Mode', cell: p => p.mode },
    { id: 'experiment', header: 'Experiment', cell: p => p.experiment },
    { id: 'owner', header: 'Owner', cell: p => p.owner },
    { id: 'created', header: 'Created', cell: p => formatTime(p.created_at) },
    { id: 'finished', header: 'Finished', cell: p => formatTime(p.finished_at) },
    { id: 'reason', header: 'Reason', cell: p => p.reason }
  ];

  const run = list.rows.find(p => String(p.id) === selected) ?? null;

  return (
    <div className="mlplat-tab-body">
      <ListToolbar updated={list.updated} onRefresh={list.refresh}>
        <StatusSelect value={status} onChange={setStatus} />
      </ListToolbar>
      <ErrorLine message={list.error} />
      {list.loading && list.rows.length === 0 ? (
        <p className="mlplat-note">Loading pipeline runs…</p>
      ) : list.rows.length === 0 && !list.error ? (
        status ? (
          <EmptyState>No pipeline runs are {status}.</EmptyState>
        ) : (
          <EmptyState>
            No pipeline runs yet. In a notebook: <code>%mlplat pipeline submit FUNC</code> (in a
            terminal: <code>mlplat pipeline submit FILE.py:FUNC</code>)
          </EmptyState>
        )
      ) : (
        <Table
          caption="Pipeline runs"
          columns={columns}
          rows={list.rows}
          rowKey={p => String(p.id)}
          selected={selected}
          onSelect={key => setSelected(key === selected ? null : key)}
        />
      )}
      <LoadMore hasMore={list.hasMore} loading={list.loadingMore} onLoadMore={list.loadMore} />
      {run ? (
        <PipelineDetails {...props} run={run} experiments={experiments} onChanged={list.refresh} />
      ) : null}
    </div>
  );
}

interface PipelineDetailsProps extends TabProps {
  run: DescribePipelineRun;
  experiments: DescribeExperiment[];
  onChanged: () => void;
}

function PipelineDetails(props: PipelineDetailsProps): JSX.Element {
  const { api, run, experiments, openNotebook, onChanged } = props;
  const { result, error, busy, act, setResult, setError } = useAction();
  const [logs, setLogs] = React.useState<DescribePipelineLogs | null>(null);

  React.useEffect(() => {
    setResult(null);
    setError(null);
    setLogs(null);
  }, [run.id]);

  const openTaskNotebook = (task: PipelineTask) =>
    act(async () => {
      const answer = await api.pipelineTaskNotebook(run.id, task.name);
      if (!answer.notebook) {
        return `Task ${task.name} of run ${run.id} kept no notebook.`;
      }
      const path = await openNotebook(`pipeline-${run.id}-${task.name}.ipynb`, answer.notebook);
      return `Opened ${path} (the executed notebook of task ${task.name}).`;
    });

  const toggleLogs = (task: PipelineTask) =>
    logs?.task === task.name
      ? setLogs(null)
      : act(async () => {
          setLogs(await api.pipelineLogs(run.id, task.name));
          return null;
        });

  const cancel = () =>
    act(async () => {
      const p = await api.cancelPipeline(run.id);
      onChanged();
      return `Pipeline run ${p.id} is ${p.status}.`;
    });

  const taskColumns: Column<PipelineTask>[] = [
    { id: 'name', header: 'Task', cell: t => t.name },
    { id: 'state', header: 'State', cell: t => t.state },
    { id: 'started', header: 'Started', cell: t => formatEpochSeconds(t.started) },
    { id: 'ended', header: 'Ended', cell: t => formatEpochSeconds(t.ended) },
    {
      id: 'outputs',
      header: 'Outputs',
      cell: t =>
        Object.keys(t.outputs).length ? (
          <code className="mlplat-json">{compactJson(t.outputs)}</code>
        ) : (
          ''
        )
    },
    {
      id: 'mlflow',
      header: 'MLflow run',
      cell: t => {
        if (!t.mlflow_run_id) {
          return '';
        }
        const url = mlflowRunUrl(experiments, t.mlflow_run_id, run.experiment, run.team);
        return url ? (
          <a href={url} target="_blank" rel="noopener noreferrer">
            {t.mlflow_run_id.slice(0, 8)}
          </a>
        ) : (
          <code>{t.mlflow_run_id}</code>
        );
      }
    },
    {
      id: 'actions',
      header: <span className="mlplat-visually-hidden">Actions</span>,
      cell: t => (
        <span className="mlplat-actions">
          {t.notebook ? (
            <Button small type="button" disabled={busy} onClick={() => void openTaskNotebook(t)}>
              Open notebook
            </Button>
          ) : null}
          <Button
            small
            type="button"
            disabled={busy}
            aria-expanded={logs?.task === t.name}
            onClick={() => void toggleLogs(t)}
          >
            Logs
          </Button>
        </span>
      )
    }
  ];

  return (
    <section className="mlplat-details" aria-label={`Pipeline run ${run.id}`}>
      <h3>
        Pipeline run {run.id}: {run.name}
      </h3>
      <p className="mlplat-note">
        {run.status} · {run.mode} · {run.owner} · team {run.team}
        {run.kfp_run_id ? ` · KFP run ${run.kfp_run_id}` : ''}
      </p>
      {run.reason ? <p>{run.reason}</p> : null}
      {ACTIVE_STATUSES.has(run.status) ? (
        <div className="mlplat-actions">
          <Button small type="button" disabled={busy} onClick={() => void cancel()}>
            Cancel
          </Button>
        </div>
      ) : null}
      <StatusLine message={result} />
      <ErrorLine message={error} />
      <h4>Tasks</h4>
      {run.tasks.length ? (
        <Table
          caption={`Tasks of pipeline run ${run.id}`}
          columns={taskColumns}
          rows={run.tasks}
          rowKey={t => t.name}
          rowTestId="mlplat-task-row"
        />
      ) : (
        <p className="mlplat-note">No tasks have started yet.</p>
      )}
      {logs ? (
        <TextBlock
          title={`Log of task ${logs.task}`}
          note={logs.truncated ? 'The end of a longer log.' : undefined}
          text={logs.text || '(empty)'}
        />
      ) : null}
      <h4>Arguments</h4>
      <KeyValues values={run.arguments} empty="No arguments." />
    </section>
  );
}
