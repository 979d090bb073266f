/**
 * What changed between two polls, as the notifications to show: the user's job runs
 * that ended, and the user's approval requests that were decided. Pure, so the
 * background poller only fetches and shows.
 */

import { DescribeApprovalRequest, DescribeJob, FINAL_JOB_STATUSES } from './api';
import { basename } from './format';

export interface Notice {
  kind: 'success' | 'error' | 'info';
  message: string;
}

const ACTIVE_JOB = new Set(['queued', 'running']);

function jobNotice(job: DescribeJob): Notice {
  const name = `Job ${job.id} (${basename(job.notebook_path) || 'notebook'})`;
  const why = job.reason ? `: ${job.reason}` : '';
  switch (job.status) {
    case 'succeeded':
      return { kind: 'success', message: `${name} succeeded` };
    case 'failed':
      return { kind: 'error', message: `${name} failed${why}` };
    case 'interrupted':
      return { kind: 'error', message: `${name} was interrupted${why}` };
    case 'cancelled':
      return { kind: 'info', message: `${name} was cancelled${why}` };
    default:
      return { kind: 'info', message: `${name} was ${job.status}${why}` };
  }
}

/**
 * Notices for `user`'s runs that are final now and were queued or running at the
 * previous poll, or that are new since it (a short run can start and end between two
 * polls). `previous` is null at the first poll: what is already final then was seen
 * before the page opened, so nothing is announced.
 */
export function jobNotices(
  previous: DescribeJob[] | null,
  current: DescribeJob[],
  user: string
): Notice[] {
  if (previous === null) {
    return [];
  }
  const before = new Map(previous.map(job => [job.id, job]));
  // Ids grow, so a run above every id of the previous poll was created after it.
  const newestBefore = previous.reduce((max, job) => Math.max(max, job.id), 0);
  const notices: Notice[] = [];
  for (const job of current) {
    if (job.owner !== user || !FINAL_JOB_STATUSES.has(job.status)) {
      continue;
    }
    const was = before.get(job.id);
    const ended = was ? ACTIVE_JOB.has(was.status) : job.id > newestBefore;
    if (ended) {
      notices.push(jobNotice(job));
    }
  }
  return notices;
}

function deciders(request: DescribeApprovalRequest, verdict: string): string {
  const names = [
    ...new Set(request.decisions.filter(d => d.verdict === verdict).map(d => d.reviewer))
  ];
  return names.join(' and ');
}

function approvalNotice(request: DescribeApprovalRequest): Notice {
  const what = `Your request #${request.id} for ${request.model} v${request.version} (${request.target})`;
  if (request.status === 'approved') {
    const by = deciders(request, 'approve');
    return { kind: 'success', message: `${what} was approved${by ? ` by ${by}` : ''}` };
  }
  if (request.status === 'rejected') {
    const by = deciders(request, 'reject');
    const comment = request.decisions.filter(d => d.verdict === 'reject').pop()?.comment;
    return {
      kind: 'error',
      message: `${what} was rejected${by ? ` by ${by}` : ''}${comment ? `: ${comment}` : ''}`
    };
  }
  return { kind: 'info', message: `${what} is now ${request.status}` };
}

/**
 * Notices for `user`'s requests that were awaiting review ("requested") at the
 * previous poll and are decided now. `current` may hold only some requests (the
 * poller lists pending ones and fetches those that left the list); a request
 * missing from it is not announced. `previous` null: the first poll, nothing to say.
 */
export function approvalNotices(
  previous: DescribeApprovalRequest[] | null,
  current: DescribeApprovalRequest[],
  user: string
): Notice[] {
  if (previous === null) {
    return [];
  }
  const before = new Map(previous.map(r => [r.id, r]));
  return current
    .filter(r => r.requester === user && r.status !== 'requested')
    .filter(r => before.get(r.id)?.status === 'requested')
    .map(approvalNotice);
}

/** Ids of `user`'s requests pending at the previous poll that the current pending list lacks. */
export function decidedSince(
  previousPending: DescribeApprovalRequest[] | null,
  currentPending: DescribeApprovalRequest[],
  user: string
): number[] {
  if (previousPending === null) {
    return [];
  }
  const still = new Set(currentPending.map(r => r.id));
  return previousPending
    .filter(r => r.requester === user && r.status === 'requested' && !still.has(r.id))
    .map(r => r.id);
}
