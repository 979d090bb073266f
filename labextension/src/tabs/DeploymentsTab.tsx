import * as React from 'react';
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Button } from '@jupyterlab/ui-components';

import { DescribeDeployment, PredictResponse, errorMessage } from '../api';
import { Column, Table } from '../components/Table';
import { EmptyState } from '../components/EmptyState';
import { ErrorLine, StatusLine } from '../components/ErrorLine';
import { KeyValues, TextBlock } from '../components/Details';
import { ListToolbar, LoadMore } from '../components/ListToolbar';
import { formatTime, serverStates, trafficSplit } from '../format';
import { usePagedList } from '../usePagedList';
import { TabProps } from './types';

const PAGE_SIZE = 50;
const DEFAULT_INPUT = '{"records": [{}]}';
const UNHEALTHY = new Set(['failed', 'crashed']);

export function DeploymentsTab(props: TabProps): JSX.Element {
  const { api, active } = props;
  const [selected, setSelected] = React.useState<string | null>(null);

  const list = usePagedList(
    cursor => api.deployments({ cursor, limit: PAGE_SIZE }),
    d => d.name,
    [api],
    active
  );

  const columns: Column<DescribeDeployment>[] = [
    { id: 'name', header: 'Name', cell: d => d.name },
    { id: 'model', header: 'Model', cell: d => d.model },
    { id: 'target', header: 'Target', cell: d => d.target },
    { id: 'status', header: 'Status', cell: d => d.status },
    { id: 'traffic', header: 'Traffic', cell: d => trafficSplit(d.traffic) },
    { id: 'endpoint', header: 'Endpoint', cell: d => <code>{d.endpoint}</code> },
    { id: 'servers', header: 'Servers', cell: d => serverStates(d.traffic) }
  ];

  const deployment = list.rows.find(d => d.name === selected) ?? null;

  return (
    <div className="mlplat-tab-body">
      <ListToolbar updated={list.updated} onRefresh={list.refresh} />
      <ErrorLine message={list.error} />
      {list.loading && list.rows.length === 0 ? (
        <p className="mlplat-note">Loading deployments…</p>
      ) : list.rows.length === 0 && !list.error ? (
        <EmptyState>
          Nothing deployed. Deploy an approved version: <code>%mlplat deploy MODEL VERSION</code>
        </EmptyState>
      ) : (
        <Table
          caption="Deployments"
          columns={columns}
          rows={list.rows}
          rowKey={d => d.name}
          selected={selected}
          onSelect={key => setSelected(key === selected ? null : key)}
        />
      )}
      <LoadMore hasMore={list.hasMore} loading={list.loadingMore} onLoadMore={list.loadMore} />
      {deployment ? (
        <DeploymentDetails {...props} deployment={deployment} onChanged={list.refresh} />
      ) : null}
    </div>
  );
}

async function confirm(title: string, body: string, label: string): Promise<boolean> {
  const result = await showDialog({
    title,
    body,
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label })]
  });
  return result.button.accept;
}

function DeploymentDetails(
  props: TabProps & { deployment: DescribeDeployment; onChanged: () => void }
): JSX.Element {
  const { api, deployment, onChanged } = props;
  const [result, setResult] = React.useState<string | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const [busy, setBusy] = React.useState(false);
  const [testing, setTesting] = React.useState(false);

  React.useEffect(() => {
    setResult(null);
    setError(null);
    setTesting(false);
  }, [deployment.name]);

  const canary =
    deployment.traffic.length > 1 ? deployment.traffic[deployment.traffic.length - 1] : null;
  // Rollback drops a canary, or else goes back to the previous version.
  const canRollback = canary !== null || !!deployment.previous_version;

  const act = async (run: () => Promise<DescribeDeployment>, done: string) => {
    setBusy(true);
    setResult(null);
    setError(null);
    try {
      const d = await run();
      setResult(`${done} ${d.name} now serves ${trafficSplit(d.traffic)}.`);
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setBusy(false);
      onChanged();
    }
  };

  const promote = async () => {
    if (
      canary &&
      (await confirm(
        `Promote ${deployment.name}?`,
        `Version ${canary.version} gets all of the traffic of ${deployment.name}.`,
        'Promote'
      ))
    ) {
      await act(() => api.promote(deployment.name), 'Promoted.');
    }
  };

  const rollback = async () => {
    const what = canary
      ? `The canary (version ${canary.version}) is dropped; the current version keeps all the traffic.`
      : `${deployment.name} goes back to version ${deployment.previous_version}.`;
    if (await confirm(`Roll back ${deployment.name}?`, what, 'Rollback')) {
      await act(() => api.rollback(deployment.name), 'Rolled back.');
    }
  };

  return (
    <section className="mlplat-details" aria-label={`Deployment ${deployment.name}`}>
      <h3>{deployment.name}</h3>
      <p className="mlplat-note">
        {deployment.model} · {deployment.target} · {deployment.status} · team {deployment.team} · by{' '}
        {deployment.created_by} · updated {formatTime(deployment.updated_at)}
      </p>
      <p>
        Previous version: {deployment.previous_version ? `v${deployment.previous_version}` : 'none'}
      </p>
      <div className="mlplat-actions">
        <Button small type="button" disabled={busy || !canary} onClick={() => void promote()}>
          Promote
        </Button>
        <Button small type="button" disabled={busy || !canRollback} onClick={() => void rollback()}>
          Rollback
        </Button>
        <Button small type="button" aria-expanded={testing} onClick={() => setTesting(!testing)}>
          Test prediction
        </Button>
      </div>
      <StatusLine message={result} />
      <ErrorLine message={error} />
      {testing ? <PredictForm {...props} /> : null}
      <h4>Provenance</h4>
      <KeyValues values={deployment.provenance} empty="No provenance recorded." />
      {deployment.traffic
        .filter(t => UNHEALTHY.has(t.server) && t.log_tail)
        .map(t => (
          <TextBlock
            key={t.version}
            title={`Server log of v${t.version} (${t.server})`}
            text={t.log_tail}
          />
        ))}
    </section>
  );
}

function PredictForm(props: TabProps & { deployment: DescribeDeployment }): JSX.Element {
  const { api, deployment } = props;
  const [input, setInput] = React.useState(DEFAULT_INPUT);
  const [answer, setAnswer] = React.useState<PredictResponse | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const [busy, setBusy] = React.useState(false);

  const send = async () => {
    setAnswer(null);
    setError(null);
    let body: unknown;
    try {
      body = JSON.parse(input);
    } catch (e) {
      setError(
        `The input is not JSON (${errorMessage(e)}); write an object like {"records": [{"x": 1}]}.`
      );
      return;
    }
    if (!body || typeof body !== 'object' || Array.isArray(body)) {
      setError(
        'The input must be a JSON object, like {"records": [{"x": 1}]} or {"columns": {"x": [1]}}.'
      );
      return;
    }
    setBusy(true);
    try {
      setAnswer(await api.predict(deployment.name, body as Record<string, unknown>));
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="mlplat-form">
      <textarea
        className="jp-mod-styled mlplat-textarea"
        aria-label="Prediction input"
        rows={4}
        spellCheck={false}
        value={input}
        onChange={event => setInput(event.target.value)}
      />
      <Button small type="button" disabled={busy} onClick={() => void send()}>
        Send
      </Button>
      <ErrorLine message={error} />
      {answer ? (
        <TextBlock
          title={`Outputs of v${answer.version}`}
          text={JSON.stringify(answer.outputs, null, 2)}
        />
      ) : null}
    </div>
  );
}
