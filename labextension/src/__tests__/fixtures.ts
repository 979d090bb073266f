/** Complete API objects for the tests, with the fields a test cares about overridden. */

import type { DescribeApprovalRequest, DescribeDecision, DescribeJob, JobStatus } from '../api';

export function job(id: number, status: JobStatus, extra: Partial<DescribeJob> = {}): DescribeJob {
  return {
    id,
    status,
    reason: '',
    owner: 'alice',
    team: 'alpha',
    notebook_path: 'work/train.ipynb',
    snapshot_digest: 'd',
    parameters: {},
    profile: '',
    schedule_id: null,
    fire_time: null,
    cells_done: 0,
    cells_total: 3,
    failed_cell: null,
    mlflow_run_id: '',
    created_at: '2026-01-01T00:00:00Z',
    started_at: null,
    finished_at: null,
    ...extra
  };
}

export function decision(reviewer: string, verdict: string, comment = ''): DescribeDecision {
  return {
    reviewer,
    verdict,
    comment,
    run_id: 'r',
    artifact_digest: 'a',
    frozen_digest: 'f',
    decided_at: '2026-01-01T00:00:00Z',
    overrides: []
  };
}

export function request(
  id: number,
  status: string,
  extra: Partial<DescribeApprovalRequest> = {}
): DescribeApprovalRequest {
  return {
    id,
    model: 'churn-model',
    version: '2',
    target: 'staging',
    status,
    requester: 'alice',
    requester_team: 'alpha',
    run_id: 'r',
    artifact_digest: 'a',
    frozen_digest: 'f',
    reason: '',
    metrics: {},
    high_risk: false,
    approvals_required: 1,
    approvals: 0,
    checks_passed: true,
    created_at: '2026-01-01T00:00:00Z',
    updated_at: '2026-01-01T00:00:00Z',
    checks: [],
    decisions: [],
    ...extra
  };
}
