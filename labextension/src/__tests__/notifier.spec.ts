import type { DescribeApprovalRequest, DescribeJob } from '../api';
import { MlplatApi } from '../api';
import { NotificationPoller } from '../notifier';
import { Notice } from '../notify';
import { decision, job, request } from './fixtures';

/** A platform the poller reads over the same REST paths as the real one. */
class FakePlatform {
  jobs: DescribeJob[] = [];
  approvals: DescribeApprovalRequest[] = [];
  down = false;
  paths: string[] = [];

  api = new MlplatApi(async path => {
    this.paths.push(path);
    if (this.down) {
      return new Response('<html>Bad Gateway</html>', { status: 502 });
    }
    const url = new URL(path, 'http://server/');
    const answer = (body: unknown) => new Response(JSON.stringify(body), { status: 200 });
    if (url.pathname === '/api/me') {
      return answer({ user: 'alice', kind: 'user', teams: ['alpha'], roles: [], source: 'hub' });
    }
    if (url.pathname === '/api/jobs') {
      return answer({ items: this.jobs, next_cursor: null });
    }
    if (url.pathname === '/api/approvals') {
      const pending = url.searchParams.get('pending') === 'true';
      const items = this.approvals.filter(r => !pending || r.status === 'requested');
      return answer({ items, next_cursor: null });
    }
    const one = url.pathname.match(/^\/api\/approvals\/(\d+)$/);
    if (one) {
      const found = this.approvals.find(r => r.id === Number(one[1]));
      return found
        ? answer(found)
        : new Response(JSON.stringify({ error: 'No such request.', code: 'not_found' }), {
            status: 404
          });
    }
    return new Response(JSON.stringify({ error: `unexpected ${path}`, code: 'usage' }), {
      status: 400
    });
  });
}

function poller(platform: FakePlatform): { poll: NotificationPoller; shown: Notice[] } {
  const shown: Notice[] = [];
  return { poll: new NotificationPoller(platform.api, n => shown.push(n)), shown };
}

describe('NotificationPoller', () => {
  it("announces the user's job run that ends after the first poll, once", async () => {
    const platform = new FakePlatform();
    platform.jobs = [job(12, 'running'), job(11, 'failed')];
    const { poll, shown } = poller(platform);

    await poll.tick();
    expect(shown).toEqual([]);

    platform.jobs = [job(12, 'succeeded'), job(11, 'failed')];
    await poll.tick();
    await poll.tick();
    expect(shown).toEqual([{ kind: 'success', message: 'Job 12 (train.ipynb) succeeded' }]);
    expect(platform.paths).toContain('api/jobs?limit=50');
  });

  it('reads a decided request by id once it leaves the pending list', async () => {
    const platform = new FakePlatform();
    platform.approvals = [request(3, 'requested'), request(4, 'requested', { requester: 'dave' })];
    const { poll, shown } = poller(platform);

    await poll.tick();
    platform.approvals = [
      request(3, 'approved', { decisions: [decision('bob', 'approve')] }),
      request(4, 'rejected', { requester: 'dave', decisions: [decision('bob', 'reject', 'no')] })
    ];
    await poll.tick();

    expect(shown).toEqual([
      {
        kind: 'success',
        message: 'Your request #3 for churn-model v2 (staging) was approved by bob'
      }
    ]);
    expect(platform.paths.filter(p => p.startsWith('api/approvals/'))).toEqual(['api/approvals/3']);
  });

  it('keeps what it saw through a failed poll and announces the change after it', async () => {
    const platform = new FakePlatform();
    platform.jobs = [job(12, 'running')];
    const { poll, shown } = poller(platform);
    await poll.tick();

    platform.down = true;
    await poll.tick();
    expect(shown).toEqual([]);

    platform.down = false;
    platform.jobs = [job(12, 'failed', { reason: 'out of memory' })];
    await poll.tick();
    expect(shown).toEqual([
      { kind: 'error', message: 'Job 12 (train.ipynb) failed: out of memory' }
    ]);
  });

  it('waits for GET api/me before reading anything else', async () => {
    const platform = new FakePlatform();
    platform.down = true;
    const { poll } = poller(platform);
    await poll.tick();
    expect(platform.paths).toEqual(['api/me']);
  });
});
