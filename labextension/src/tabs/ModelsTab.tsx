import * as React from 'react';
import { Button } from '@jupyterlab/ui-components';

import {
  DescribeApprovalRequest,
  DescribeAuditEvent,
  DescribeModelVersionState,
  MlplatError,
  Target,
  errorMessage
} from '../api';
import { Column, Table } from '../components/Table';
import { EmptyState } from '../components/EmptyState';
import { ErrorLine, StatusLine } from '../components/ErrorLine';
import { ListToolbar, LoadMore } from '../components/ListToolbar';
import { compactJson, formatTime, trafficSplit } from '../format';
import { useAction } from '../useAction';
import { usePagedList } from '../usePagedList';
import { TabProps } from './types';

const PAGE_SIZE = 50;
const AUDIT_PAGE_SIZE = 100;
const REQUESTABLE = new Set(['unrequested', 'rejected']);

const versionKey = (v: DescribeModelVersionState) => `${v.model}/${v.version}`;

export function ModelsTab(props: TabProps): JSX.Element {
  const { api, active } = props;
  const [selected, setSelected] = React.useState<string | null>(null);

  const list = usePagedList(
    cursor => api.modelVersions({ cursor, limit: PAGE_SIZE }),
    versionKey,
    [api],
    active
  );

  const columns: Column<DescribeModelVersionState>[] = [
    { id: 'model', header: 'Model', cell: v => v.model },
    { id: 'version', header: 'Version', cell: v => v.version },
    { id: 'team', header: 'Team', cell: v => v.team },
    { id: 'state', header: 'State', cell: v => v.state },
    { id: 'risk', header: 'High risk', cell: v => (v.high_risk ? 'yes' : 'no') },
    { id: 'created', header: 'Created', cell: v => formatTime(v.created_at) }
  ];

  // The details follow the list's refreshes: they show the row as last fetched.
  const version = list.rows.find(v => versionKey(v) === selected) ?? null;

  return (
    <div className="mlplat-tab-body">
      <ListToolbar updated={list.updated} onRefresh={list.refresh} />
      <ErrorLine message={list.error} />
      {list.loading && list.rows.length === 0 ? (
        <p className="mlplat-note">Loading model versions…</p>
      ) : list.rows.length === 0 && !list.error ? (
        <EmptyState>
          No model versions yet. Register one: <code>%mlplat register RUN_ID --model MODEL</code>
        </EmptyState>
      ) : (
        <Table
          caption="Model versions"
          columns={columns}
          rows={list.rows}
          rowKey={versionKey}
          selected={selected}
          onSelect={key => setSelected(key === selected ? null : key)}
        />
      )}
      <LoadMore hasMore={list.hasMore} loading={list.loadingMore} onLoadMore={list.loadMore} />
      {version ? <VersionDetails {...props} version={version} onChanged={list.refresh} /> : null}
    </div>
  );
}

interface VersionDetailsProps extends TabProps {
  version: DescribeModelVersionState;
  onChanged: () => void;
}

function VersionDetails(props: VersionDetailsProps): JSX.Element {
  const { api, me, version, onChanged } = props;
  const [auditVersion, setAuditVersion] = React.useState(0);
  const { result, error, act, setResult, setError } = useAction(() => {
    onChanged();
    setAuditVersion(n => n + 1);
  });
  const key = versionKey(version);

  React.useEffect(() => {
    setResult(null);
    setError(null);
  }, [key]);

  const isReviewer = me?.roles.includes('reviewer') ?? false;

  return (
    <section className="mlplat-details" aria-label={`${version.model} version ${version.version}`}>
      <h3>
        {version.model} v{version.version}
      </h3>
      <p className="mlplat-note">
        {version.state} · team {version.team} · run {version.run_id}
        {version.high_risk ? ' · high risk' : ''}
      </p>
      {version.mlflow_url ? (
        <p>
          <a href={version.mlflow_url} target="_blank" rel="noopener noreferrer">
            Open in MLflow
          </a>
        </p>
      ) : null}
      <StatusLine message={result} />
      <ErrorLine message={error} />
      {REQUESTABLE.has(version.state) ? (
        <RequestApprovalForm
          onSubmit={(target, reason) =>
            act(async () => {
              const r = await api.requestApproval({
                model: version.model,
                version: version.version,
                target,
                reason: reason || undefined
              });
              return `Request #${r.id} for ${r.model} v${r.version} (${r.target}) is ${r.status}.`;
            })
          }
        />
      ) : null}
      <h4>Requests</h4>
      {version.requests.length === 0 ? (
        <p className="mlplat-note">No approval requests yet.</p>
      ) : (
        version.requests.map(request => (
          <ApprovalRequestView
            key={request.id}
            request={request}
            canDecide={isReviewer && request.status === 'requested'}
            canDeploy={request.status === 'approved' && (me?.teams.includes(version.team) ?? false)}
            onDeploy={() =>
              act(async () => {
                const d = await api.deploy({
                  model: request.model,
                  version: request.version,
                  target: request.target
                });
                return `Deployed ${d.model} v${request.version} to ${d.target} as ${d.name}: ${trafficSplit(d.traffic)}.`;
              })
            }
            onDecide={(verdict, comment) =>
              act(async () => {
                const r =
                  verdict === 'approve'
                    ? await api.approve(request.id, comment)
                    : await api.reject(request.id, comment);
                return `Request #${r.id} is ${r.status} (${r.approvals} of ${r.approvals_required} approvals).`;
              })
            }
          />
        ))
      )}
      <AuditTrail {...props} reload={auditVersion} />
    </section>
  );
}

function RequestApprovalForm(props: {
  onSubmit: (target: Target, reason: string) => Promise<void>;
}): JSX.Element {
  const [target, setTarget] = React.useState<Target>('staging');
  const [reason, setReason] = React.useState('');
  const [busy, setBusy] = React.useState(false);
  return (
    <form
      className="mlplat-form"
      onSubmit={async event => {
        event.preventDefault();
        setBusy(true);
        await props.onSubmit(target, reason.trim());
        setBusy(false);
      }}
    >
      <label className="mlplat-field">
        Target{' '}
        <select
          className="jp-mod-styled"
          value={target}
          onChange={event => setTarget(event.target.value as Target)}
        >
          <option value="staging">staging</option>
          <option value="production">production</option>
        </select>
      </label>
      <label className="mlplat-field">
        Reason{' '}
        <input
          className="jp-mod-styled"
          type="text"
          value={reason}
          onChange={event => setReason(event.target.value)}
        />
      </label>
      <Button small type="submit" disabled={busy}>
        Request approval
      </Button>
    </form>
  );
}

function ApprovalRequestView(props: {
  request: DescribeApprovalRequest;
  canDecide: boolean;
  onDecide: (verdict: 'approve' | 'reject', comment: string) => Promise<void>;
  canDeploy: boolean;
  onDeploy: () => Promise<void>;
}): JSX.Element {
  const { request } = props;
  const [comment, setComment] = React.useState('');
  const [busy, setBusy] = React.useState(false);
  const deploy = async () => {
    setBusy(true);
    await props.onDeploy();
    setBusy(false);
  };
  const decide = async (verdict: 'approve' | 'reject') => {
    setBusy(true);
    await props.onDecide(verdict, comment.trim());
    setBusy(false);
  };
  return (
    <article className="mlplat-request" aria-label={`Request #${request.id}`}>
      <h5>
        #{request.id} {request.target}: {request.status} ({request.approvals} of{' '}
        {request.approvals_required} approvals)
      </h5>
      <p className="mlplat-note">
        requested by {request.requester} ({request.requester_team}) on{' '}
        {formatTime(request.created_at)}
        {request.reason ? ` — ${request.reason}` : ''}
      </p>
      <table className="mlplat-table">
        <caption>Checks</caption>
        <thead>
          <tr>
            <th scope="col">Check</th>
            <th scope="col">Passed</th>
            <th scope="col">Message</th>
            <th scope="col">Inputs</th>
          </tr>
        </thead>
        <tbody>
          {request.checks.map(check => (
            <tr key={check.name}>
              <td>{check.name}</td>
              <td className={check.passed ? 'mlplat-pass' : 'mlplat-fail'}>
                <span aria-hidden="true">{check.passed ? '✓' : '✗'}</span>
                <span className="mlplat-visually-hidden">{check.passed ? 'passed' : 'failed'}</span>
              </td>
              <td>{check.message}</td>
              <td>
                <code className="mlplat-json">{compactJson(check.inputs)}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {request.decisions.length ? (
        <ul className="mlplat-decisions" aria-label="Decisions">
          {request.decisions.map((d, i) => (
            <li key={i}>
              {d.reviewer}: {d.verdict}
              {d.comment ? ` — ${d.comment}` : ''}
              {d.overrides.length ? ` (overrides ${d.overrides.join(', ')})` : ''}
            </li>
          ))}
        </ul>
      ) : null}
      {props.canDeploy ? (
        <div className="mlplat-actions">
          <Button small type="button" disabled={busy} onClick={() => void deploy()}>
            {busy ? 'Deploying…' : 'Deploy'}
          </Button>
        </div>
      ) : null}
      {props.canDecide ? (
        <div className="mlplat-actions">
          <input
            className="jp-mod-styled mlplat-grow"
            type="text"
            aria-label="Comment"
            placeholder="Comment (required to reject)"
            value={comment}
            onChange={event => setComment(event.target.value)}
          />
          <Button small type="button" disabled={busy} onClick={() => void decide('approve')}>
            Approve
          </Button>
          <Button small type="button" disabled={busy} onClick={() => void decide('reject')}>
            Reject
          </Button>
        </div>
      ) : null}
    </article>
  );
}

function AuditTrail(props: VersionDetailsProps & { reload: number }): JSX.Element {
  const { api, version, reload } = props;
  const [events, setEvents] = React.useState<DescribeAuditEvent[] | null>(null);
  const [more, setMore] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const [forbidden, setForbidden] = React.useState(false);

  React.useEffect(() => {
    let current = true;
    setError(null);
    setForbidden(false);
    api
      .versionAudit(version.model, version.version, { limit: AUDIT_PAGE_SIZE })
      .then(page => {
        if (current) {
          setEvents(page.items);
          setMore(page.next_cursor !== null);
        }
      })
      .catch(e => {
        if (!current) {
          return;
        }
        if (e instanceof MlplatError && e.status === 403) {
          setForbidden(true);
        } else {
          setError(errorMessage(e));
        }
        setEvents(null);
      });
    return () => {
      current = false;
    };
  }, [api, version.model, version.version, reload]);

  return (
    <>
      <h4>Audit trail</h4>
      {forbidden ? (
        <p className="mlplat-note">Only reviewers and the model's team can see its audit trail.</p>
      ) : null}
      <ErrorLine message={error} />
      {events && events.length === 0 ? <p className="mlplat-note">No audit events.</p> : null}
      {events && events.length ? (
        <table className="mlplat-table">
          <caption className="mlplat-visually-hidden">Audit trail</caption>
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">Time</th>
              <th scope="col">Actor</th>
              <th scope="col">Action</th>
              <th scope="col">Reason</th>
            </tr>
          </thead>
          <tbody>
            {events.map(event => (
              <tr key={event.seq}>
                <td>{event.seq}</td>
                <td>{formatTime(event.time)}</td>
                <td>{event.actor}</td>
                <td>{event.action}</td>
                <td>{event.reason}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {more ? (
        <p className="mlplat-note">
          The first {AUDIT_PAGE_SIZE} events are shown; <code>%mlplat audit export</code> writes
          all.
        </p>
      ) : null}
    </>
  );
}
