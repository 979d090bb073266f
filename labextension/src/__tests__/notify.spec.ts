import { approvalNotices, decidedSince, jobNotices } from '../notify';
import { decision, job, request } from './fixtures';

describe('jobNotices', () => {
  it('says nothing at the first poll, even about final runs', () => {
    expect(jobNotices(null, [job(12, 'succeeded'), job(11, 'failed')], 'alice')).toEqual([]);
  });

  it('announces a run that went from running to succeeded', () => {
    expect(jobNotices([job(12, 'running')], [job(12, 'succeeded')], 'alice')).toEqual([
      { kind: 'success', message: 'Job 12 (train.ipynb) succeeded' }
    ]);
  });

  it('announces a failure with its reason', () => {
    const failed = job(12, 'failed', { reason: 'cell 4 raised ValueError' });
    expect(jobNotices([job(12, 'queued')], [failed], 'alice')).toEqual([
      { kind: 'error', message: 'Job 12 (train.ipynb) failed: cell 4 raised ValueError' }
    ]);
  });

  it('announces cancelled and interrupted runs', () => {
    const notices = jobNotices(
      [job(13, 'running'), job(12, 'running')],
      [job(13, 'cancelled'), job(12, 'interrupted', { reason: 'the platform restarted' })],
      'alice'
    );
    expect(notices).toEqual([
      { kind: 'info', message: 'Job 13 (train.ipynb) was cancelled' },
      { kind: 'error', message: 'Job 12 (train.ipynb) was interrupted: the platform restarted' }
    ]);
  });

  it("ignores other users' runs and runs still going", () => {
    const previous = [job(12, 'running', { owner: 'bob' }), job(11, 'queued')];
    const current = [job(12, 'succeeded', { owner: 'bob' }), job(11, 'running')];
    expect(jobNotices(previous, current, 'alice')).toEqual([]);
  });

  it('does not repeat a run that was already final', () => {
    expect(jobNotices([job(12, 'succeeded')], [job(12, 'succeeded')], 'alice')).toEqual([]);
  });

  it('announces a run that started and ended between two polls', () => {
    const notices = jobNotices(
      [job(12, 'succeeded')],
      [job(13, 'failed'), job(12, 'succeeded')],
      'alice'
    );
    expect(notices).toEqual([{ kind: 'error', message: 'Job 13 (train.ipynb) failed' }]);
  });

  it('does not take an older run that comes into view for a new one', () => {
    // The previous poll saw ids 20..12; id 5 is old, not new.
    expect(
      jobNotices(
        [job(20, 'running'), job(12, 'succeeded')],
        [job(20, 'running'), job(5, 'failed')],
        'alice'
      )
    ).toEqual([]);
  });
});

describe('approvalNotices', () => {
  it('says nothing at the first poll', () => {
    expect(approvalNotices(null, [request(3, 'approved')], 'alice')).toEqual([]);
  });

  it('announces an approval and who approved it', () => {
    const approved = request(3, 'approved', { decisions: [decision('bob', 'approve')] });
    expect(approvalNotices([request(3, 'requested')], [approved], 'alice')).toEqual([
      {
        kind: 'success',
        message: 'Your request #3 for churn-model v2 (staging) was approved by bob'
      }
    ]);
  });

  it('names both reviewers of a high-risk approval', () => {
    const approved = request(4, 'approved', {
      target: 'production',
      decisions: [decision('bob', 'approve'), decision('carol', 'approve')]
    });
    expect(approvalNotices([request(4, 'requested')], [approved], 'alice')[0].message).toBe(
      'Your request #4 for churn-model v2 (production) was approved by bob and carol'
    );
  });

  it('announces a rejection with its comment', () => {
    const rejected = request(3, 'rejected', {
      decisions: [decision('bob', 'reject', 'no holdout set')]
    });
    expect(approvalNotices([request(3, 'requested')], [rejected], 'alice')).toEqual([
      {
        kind: 'error',
        message: 'Your request #3 for churn-model v2 (staging) was rejected by bob: no holdout set'
      }
    ]);
  });

  it("ignores other users' requests and requests not pending before", () => {
    const previous = [request(3, 'requested', { requester: 'dave' }), request(4, 'approved')];
    const current = [request(3, 'approved', { requester: 'dave' }), request(4, 'approved')];
    expect(approvalNotices(previous, current, 'alice')).toEqual([]);
  });

  it('says nothing while a request is still pending', () => {
    expect(approvalNotices([request(3, 'requested')], [request(3, 'requested')], 'alice')).toEqual(
      []
    );
  });
});

describe('decidedSince', () => {
  it("finds the user's requests that left the pending list", () => {
    const previous = [
      request(3, 'requested'),
      request(4, 'requested', { requester: 'dave' }),
      request(5, 'requested')
    ];
    const current = [request(5, 'requested')];
    expect(decidedSince(previous, current, 'alice')).toEqual([3]);
    expect(decidedSince(null, current, 'alice')).toEqual([]);
  });
});
