import * as React from 'react';
import { Button } from '@jupyterlab/ui-components';

import {
  DescribeJob,
  DescribeJobLogs,
  DescribeSchedule,
  JobStatus,
  errorMessage
} from '../api';
import { Column, Table } from '../components/Table';
import { EmptyState } from '../components/EmptyState';
import { ErrorLine, StatusLine } from '../components/ErrorLine';
import { KeyValues, TextBlock } from '../components/Details';
import { ListToolbar, LoadMore } from '../components/ListToolbar';
import { StatusSelect } from '../components/StatusSelect';
import {
  basename,
  failedCellSummary,
  formatTime,
  parameterInput,
  parseParameterInputs
} from '../format';
import { useAction } from '../useAction';
import { PagedList, usePagedList } from '../usePagedList';
import { ACTIVE_STATUSES, TabProps } from './types';

const PAGE_SIZE = 50;

type Schedules = PagedList<DescribeSchedule>;
type JobRuns = PagedList<DescribeJob>;

/** Schedules and job runs, with one toolbar: the status filter (runs) and Refresh (both). */
export function JobsTab(props: TabProps): JSX.Element {
  const { api, active } = props;
  const [status, setStatus] = React.useState<JobStatus | ''>('');
  const schedules = usePagedList(
    cursor => api.schedules({ cursor, limit: PAGE_SIZE }),
    s => String(s.id),
    [api],
    active
  );
  const runs = usePagedList(
    cursor => api.jobs({ status, cursor, limit: PAGE_SIZE }),
    j => String(j.id),
    [api, status],
    active
  );
  return (
    <div className="mlplat-tab-body">
      <ListToolbar
        updated={runs.updated}
        onRefresh={() => {
          schedules.refresh();
          runs.refresh();
        }}
      >
        <StatusSelect value={status} onChange={setStatus} />
      </ListToolbar>
      <SchedulesSection {...props} list={schedules} />
      <JobRunsSection {...props} list={runs} status={status} />
    </div>
  );
}

function SchedulesSection(props: TabProps & { list: Schedules }): JSX.Element {
  const { api, list } = props;
  const [error, setError] = React.useState<string | null>(null);
  const [busy, setBusy] = React.useState<number | null>(null);

  const change = async (schedule: DescribeSchedule, action: 'pause' | 'resume') => {
    setBusy(schedule.id);
    setError(null);
    try {
      await (action === 'pause' ? api.pauseSchedule(schedule.id) : api.resumeSchedule(schedule.id));
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setBusy(null);
      list.refresh();
    }
  };

  const columns: Column<DescribeSchedule>[] = [
    { id: 'name', header: 'Name', cell: s => s.name },
    { id: 'cron', header: 'Cron', cell: s => <code>{s.cron}</code> },
    { id: 'tz', header: 'Timezone', cell: s => s.timezone },
    { id: 'next', header: 'Next fire', cell: s => (s.paused ? '' : formatTime(s.next_fire_at)) },
    { id: 'paused', header: 'Paused', cell: s => (s.paused ? 'yes' : 'no') },
    {
      id: 'actions',
      header: <span className="mlplat-visually-hidden">Actions</span>,
      cell: s => (
        <Button
          small
          type="button"
          disabled={busy === s.id}
          onClick={() => void change(s, s.paused ? 'resume' : 'pause')}
        >
          {s.paused ? 'Resume' : 'Pause'}
        </Button>
      )
    }
  ];

  return (
    <section aria-labelledby="mlplat-schedules-heading">
      <h3 id="mlplat-schedules-heading">Schedules</h3>
      <ErrorLine message={list.error} />
      <ErrorLine message={error} />
      {list.loading && list.rows.length === 0 ? (
        <p className="mlplat-note">Loading schedules…</p>
      ) : list.rows.length === 0 && !list.error ? (
        <EmptyState>
          No schedules. Run a notebook on a schedule:{' '}
          <code>%mlplat job schedule NOTEBOOK.ipynb --cron '0 6 * * *'</code>
        </EmptyState>
      ) : (
        <Table
          caption="Schedules"
          columns={columns}
          rows={list.rows}
          rowKey={s => String(s.id)}
          rowTestId="mlplat-schedule-row"
        />
      )}
      <LoadMore hasMore={list.hasMore} loading={list.loadingMore} onLoadMore={list.loadMore} />
    </section>
  );
}

function JobRunsSection(props: TabProps & { list: JobRuns; status: JobStatus | '' }): JSX.Element {
  const { list, status } = props;
  const [selected, setSelected] = React.useState<string | null>(null);

  const columns: Column<DescribeJob>[] = [
    { id: 'id', header: 'Id', cell: j => j.id, className: 'mlplat-num' },
    {
      id: 'notebook',
      header: 'Notebook',
      cell: j => <span title={j.notebook_path}>{basename(j.notebook_path)}</span>
    },
    { id: 'status', header: 'Status', cell: j => j.status },
    { id: 'owner', header: 'Owner', cell: j => j.owner },
    {
      id: 'cells',
      header: 'Cells',
      className: 'mlplat-num',
      cell: j => (j.cells_total ? `${j.cells_done}/${j.cells_total}` : '')
    },
    { id: 'started', header: 'Started', cell: j => formatTime(j.started_at) },
    { id: 'finished', header: 'Finished', cell: j => formatTime(j.finished_at) },
    { id: 'reason', header: 'Reason', cell: j => j.reason }
  ];

  const job = list.rows.find(j => String(j.id) === selected) ?? null;

  return (
    <section aria-labelledby="mlplat-job-runs-heading">
      <h3 id="mlplat-job-runs-heading">Runs</h3>
      <ErrorLine message={list.error} />
      {list.loading && list.rows.length === 0 ? (
        <p className="mlplat-note">Loading job runs…</p>
      ) : list.rows.length === 0 && !list.error ? (
        status ? (
          <EmptyState>No job runs are {status}.</EmptyState>
        ) : (
          <EmptyState>
            No jobs yet. Run this notebook as a job: <code>%mlplat job run NOTEBOOK.ipynb</code>
          </EmptyState>
        )
      ) : (
        <Table
          caption="Job runs"
          columns={columns}
          rows={list.rows}
          rowKey={j => String(j.id)}
          selected={selected}
          onSelect={key => setSelected(key === selected ? null : key)}
        />
      )}
      <LoadMore hasMore={list.hasMore} loading={list.loadingMore} onLoadMore={list.loadMore} />
      {job ? <JobDetails {...props} job={job} onChanged={list.refresh} /> : null}
    </section>
  );
}

function JobDetails(props: TabProps & { job: DescribeJob; onChanged: () => void }): JSX.Element {
  const { api, job, openNotebook, onChanged } = props;
  const { result, error, busy, act, setResult, setError } = useAction();
  const [logs, setLogs] = React.useState<DescribeJobLogs | null>(null);
  const [rerunning, setRerunning] = React.useState(false);

  React.useEffect(() => {
    setResult(null);
    setError(null);
    setLogs(null);
    setRerunning(false);
  }, [job.id]);

  const openOutput = () =>
    act(async () => {
      const answer = await api.jobNotebook(job.id);
      if (!answer.notebook) {
        return `Job ${job.id} has no executed notebook yet: it is kept when the run ends.`;
      }
      const path = await openNotebook(`job-${job.id}.ipynb`, answer.notebook);
      return `Opened ${path} (the executed notebook of job ${job.id}).`;
    });

  const toggleLogs = () =>
    logs
      ? setLogs(null)
      : act(async () => {
          setLogs(await api.jobLogs(job.id));
          return null;
        });

  const cancel = () =>
    act(async () => {
      const j = await api.cancelJob(job.id);
      onChanged();
      return `Job ${j.id} is ${j.status}.`;
    });

  const failed = failedCellSummary(job.failed_cell);

  return (
    <section className="mlplat-details" aria-label={`Job ${job.id}`}>
      <h3>
        Job {job.id}: {basename(job.notebook_path)}
      </h3>
      <p className="mlplat-note">
        {job.status} · {job.owner} · team {job.team}
        {job.profile ? ` · profile ${job.profile}` : ''}
        {job.schedule_id !== null ? ` · schedule ${job.schedule_id}` : ''}
        {job.mlflow_run_id ? ` · MLflow run ${job.mlflow_run_id}` : ''}
      </p>
      {job.reason ? <p>{job.reason}</p> : null}
      {failed ? (
        <div className="mlplat-failed-cell">
          <p>Failed at {failed}</p>
          {job.failed_cell?.source ? (
            <pre className="mlplat-pre">{job.failed_cell.source}</pre>
          ) : null}
        </div>
      ) : null}
      <div className="mlplat-actions">
        <Button small type="button" disabled={busy} onClick={() => void openOutput()}>
          Open notebook
        </Button>
        <Button
          small
          type="button"
          aria-expanded={logs !== null}
          disabled={busy}
          onClick={() => void toggleLogs()}
        >
          Logs
        </Button>
        {ACTIVE_STATUSES.has(job.status) ? (
          <Button small type="button" disabled={busy} onClick={() => void cancel()}>
            Cancel
          </Button>
        ) : null}
        <Button
          small
          type="button"
          aria-expanded={rerunning}
          onClick={() => setRerunning(!rerunning)}
        >
          Re-run
        </Button>
      </div>
      <StatusLine message={result} />
      <ErrorLine message={error} />
      {rerunning ? (
        <RerunForm
          job={job}
          onRun={parameters =>
            act(async () => {
              const j = await api.rerunJob(job.id, parameters);
              setRerunning(false);
              onChanged();
              return `Job ${j.id} is ${j.status} (a re-run of job ${job.id}).`;
            })
          }
        />
      ) : null}
      {logs ? (
        <TextBlock
          title={`Log of job ${job.id}`}
          note={logs.truncated ? 'The end of a longer log.' : undefined}
          text={logs.text || '(empty)'}
        />
      ) : null}
      <h4>Parameters</h4>
      <KeyValues values={job.parameters} empty="No parameters." />
    </section>
  );
}

function RerunForm(props: {
  job: DescribeJob;
  onRun: (parameters: Record<string, unknown>) => Promise<void>;
}): JSX.Element {
  const { job } = props;
  const [texts, setTexts] = React.useState<Record<string, string>>(() =>
    Object.fromEntries(Object.entries(job.parameters).map(([k, v]) => [k, parameterInput(v)]))
  );
  const [busy, setBusy] = React.useState(false);
  const names = Object.keys(texts);
  return (
    <form
      className="mlplat-form"
      aria-label={`Re-run job ${job.id}`}
      onSubmit={async event => {
        event.preventDefault();
        setBusy(true);
        await props.onRun(parseParameterInputs(texts));
        setBusy(false);
      }}
    >
      {names.length ? (
        <p className="mlplat-note">
          Values are JSON (a text that is not JSON is sent as a string).
        </p>
      ) : (
        <p className="mlplat-note">This run had no parameters; it runs again as it was.</p>
      )}
      {names.map(name => (
        <label key={name} className="mlplat-field">
          {name}{' '}
          <input
            className="jp-mod-styled"
            type="text"
            spellCheck={false}
            value={texts[name]}
            onChange={event => setTexts({ ...texts, [name]: event.target.value })}
          />
        </label>
      ))}
      <Button small type="submit" disabled={busy}>
        Run
      </Button>
    </form>
  );
}
