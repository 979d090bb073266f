import {
  MlplatApi,
  MlplatError,
  Page,
  apiPath,
  flattenPages,
  queryString,
  withFreshFirstPage
} from '../api';

interface Sent {
  path: string;
  init: RequestInit;
}

/** An API whose requests are recorded and answered with `answer`. */
function recording(answer: () => Response | Promise<Response>): { api: MlplatApi; sent: Sent[] } {
  const sent: Sent[] = [];
  const api = new MlplatApi(async (path, init) => {
    sent.push({ path, init });
    return answer();
  });
  return { api, sent };
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json' }
  });
}

const EMPTY_PAGE = { items: [], next_cursor: null };

describe('URLs', () => {
  it('encodes each path part, so a name with a slash stays one segment', () => {
    expect(apiPath('models', 'team/churn model', 'versions', '2', 'audit')).toBe(
      'api/models/team%2Fchurn%20model/versions/2/audit'
    );
  });

  it('leaves out unset query values and encodes the others', () => {
    expect(queryString({ a: 'x y', b: undefined, c: null, d: '', e: 0, f: false })).toBe(
      '?a=x%20y&e=0&f=false'
    );
    expect(queryString({})).toBe('');
  });

  it('sends the runs query: experiment, MLflow filter and order, cursor and limit', async () => {
    const { api, sent } = recording(() => json(EMPTY_PAGE));
    await api.runs({
      experiment_id: '3',
      filter: "metrics.auc > 0.8 and params.depth = '3'",
      order: 'metrics.`val auc` DESC',
      cursor: 'tok+/=',
      limit: 50
    });
    expect(sent).toHaveLength(1);
    expect(sent[0].init.method).toBe('GET');
    expect(sent[0].init.body).toBeUndefined();
    const url = new URL(sent[0].path, 'http://x/');
    expect(url.pathname).toBe('/api/runs');
    expect(url.searchParams.get('experiment_id')).toBe('3');
    expect(url.searchParams.get('filter')).toBe("metrics.auc > 0.8 and params.depth = '3'");
    expect(url.searchParams.get('order')).toBe('metrics.`val auc` DESC');
    expect(url.searchParams.get('cursor')).toBe('tok+/=');
    expect(url.searchParams.get('limit')).toBe('50');
  });

  it("never asks for 'no-store', which makes ServerConnection add a bare timestamp parameter", async () => {
    const { api, sent } = recording(() => json(EMPTY_PAGE));
    await api.jobs({ limit: 5 });
    await api.cancelJob(1);
    expect(sent.map(s => s.init.cache)).toEqual(['no-cache', 'no-cache']);
  });

  it('asks for all experiments without an experiment_id', async () => {
    const { api, sent } = recording(() => json(EMPTY_PAGE));
    await api.runs({ experiment_id: null, filter: '', order: 'attributes.start_time DESC' });
    expect(sent[0].path).toBe('api/runs?order=attributes.start_time%20DESC');
  });

  it.each<[string, (api: MlplatApi) => Promise<unknown>, string]>([
    ['me', api => api.me(), 'api/me'],
    ['the status', api => api.status(), 'api/status'],
    ['a run', api => api.run('0123abcd'), 'api/runs/0123abcd'],
    ['a run notebook', api => api.runNotebook('0123abcd'), 'api/runs/0123abcd/notebook'],
    [
      'model versions',
      api => api.modelVersions({ model: 'churn', limit: 20 }),
      'api/models?model=churn&limit=20'
    ],
    [
      'pending approvals',
      api => api.approvals({ pending: true, limit: 500 }),
      'api/approvals?pending=true&limit=500'
    ],
    ['an approval', api => api.approval(3), 'api/approvals/3'],
    [
      'jobs by status',
      api => api.jobs({ status: 'failed', cursor: '40', limit: 50 }),
      'api/jobs?status=failed&cursor=40&limit=50'
    ],
    ['jobs of any status', api => api.jobs({ status: '', limit: 50 }), 'api/jobs?limit=50'],
    ['job logs', api => api.jobLogs(12), 'api/jobs/12/logs'],
    ['a job notebook', api => api.jobNotebook(12), 'api/jobs/12/notebook'],
    ['schedules', api => api.schedules({ limit: 10 }), 'api/schedules?limit=10'],
    [
      'pipeline logs of a task',
      api => api.pipelineLogs(7, 'train step'),
      'api/pipelines/7/logs?task=train%20step'
    ],
    ['pipeline logs of the run', api => api.pipelineLogs(7), 'api/pipelines/7/logs'],
    [
      'a task notebook',
      api => api.pipelineTaskNotebook(7, 'train.v2'),
      'api/pipelines/7/tasks/train.v2/notebook'
    ],
    ['deployments', api => api.deployments({ cursor: '5' }), 'api/deployments?cursor=5']
  ])('GETs %s', async (_what, call, path) => {
    const { api, sent } = recording(() => json(EMPTY_PAGE));
    await call(api);
    expect(sent.map(s => [s.init.method, s.path])).toEqual([['GET', path]]);
  });
});

describe('JSON bodies', () => {
  it.each<[string, (api: MlplatApi) => Promise<unknown>, string, unknown]>([
    [
      'an approval request',
      api =>
        api.requestApproval({
          model: 'churn',
          version: '2',
          target: 'production',
          reason: 'better auc'
        }),
      'api/approvals',
      { model: 'churn', version: '2', target: 'production', reason: 'better auc' }
    ],
    [
      'an approval',
      api => api.approve(3, 'looks good'),
      'api/approvals/3/approve',
      { comment: 'looks good' }
    ],
    [
      'a rejection',
      api => api.reject(3, 'no tests'),
      'api/approvals/3/reject',
      { comment: 'no tests' }
    ],
    [
      'a deployment',
      api => api.deploy({ model: 'churn', version: '2', target: 'staging' }),
      'api/deployments',
      { model: 'churn', version: '2', target: 'staging' }
    ],
    [
      'a promotion',
      api => api.promote('churn-staging'),
      'api/deployments/churn-staging/promote',
      {}
    ],
    [
      'a rollback',
      api => api.rollback('churn staging'),
      'api/deployments/churn%20staging/rollback',
      {}
    ],
    [
      'a prediction',
      api => api.predict('churn-staging', { records: [{ x: 1 }] }),
      'api/deployments/churn-staging/predict',
      { records: [{ x: 1 }] }
    ],
    ['a cancel', api => api.cancelJob(12), 'api/jobs/12/cancel', {}],
    [
      'a re-run',
      api => api.rerunJob(12, { alpha: 0.5, name: 'x', flags: [1, 2] }),
      'api/jobs/12/rerun',
      { parameters: { alpha: 0.5, name: 'x', flags: [1, 2] } }
    ],
    ['a pause', api => api.pauseSchedule(4), 'api/schedules/4/pause', {}],
    ['a resume', api => api.resumeSchedule(4), 'api/schedules/4/resume', {}],
    ['a pipeline cancel', api => api.cancelPipeline(7), 'api/pipelines/7/cancel', {}]
  ])('POSTs %s as JSON', async (_what, call, path, body) => {
    const { api, sent } = recording(() => json({}));
    await call(api);
    expect(sent).toHaveLength(1);
    expect(sent[0].path).toBe(path);
    expect(sent[0].init.method).toBe('POST');
    expect(sent[0].init.headers).toEqual({ 'Content-Type': 'application/json' });
    expect(JSON.parse(sent[0].init.body as string)).toEqual(body);
  });

  it('returns the parsed answer', async () => {
    const job = { id: 13, status: 'queued' };
    const { api } = recording(() => json(job, 201));
    await expect(api.rerunJob(12, {})).resolves.toEqual(job);
  });
});

describe('errors', () => {
  async function failure(call: Promise<unknown>): Promise<MlplatError> {
    try {
      await call;
    } catch (e) {
      expect(e).toBeInstanceOf(MlplatError);
      return e as MlplatError;
    }
    throw new Error('the call did not fail');
  }

  it('keeps the sentence and code of an {"error", "code"} answer', async () => {
    const sentence =
      'Approval request #3 is already approved; only requests awaiting review can be approved.';
    const { api } = recording(() => json({ error: sentence, code: 'conflict' }, 409));
    const error = await failure(api.approve(3, ''));
    expect(error.message).toBe(sentence);
    expect(error.code).toBe('conflict');
    expect(error.status).toBe(409);
  });

  it('takes "error" as the code when the answer has none', async () => {
    const { api } = recording(() => json({ error: 'Something broke.' }, 500));
    const error = await failure(api.me());
    expect([error.message, error.code, error.status]).toEqual(['Something broke.', 'error', 500]);
  });

  it("uses the message of Jupyter server's own errors", async () => {
    const { api } = recording(() =>
      json({ message: "'_xsrf' argument missing from POST", reason: null }, 403)
    );
    const error = await failure(api.cancelJob(1));
    expect(error.message).toBe("'_xsrf' argument missing from POST");
    expect(error.status).toBe(403);
  });

  it('explains a non-JSON error body by its status', async () => {
    const { api } = recording(
      () =>
        new Response('<html><body>Bad Gateway</body></html>', {
          status: 502,
          statusText: 'Bad Gateway'
        })
    );
    const error = await failure(api.jobs());
    expect(error.code).toBe('http');
    expect(error.status).toBe(502);
    expect(error.message).toMatch(/^The server answered 502 Bad Gateway without an explanation/);
    expect(error.message).not.toContain('<html>');
  });

  it('turns a failed connection into a sentence', async () => {
    const api = new MlplatApi(() => Promise.reject(new TypeError('Failed to fetch')));
    const error = await failure(api.me());
    expect(error.code).toBe('network');
    expect(error.status).toBe(0);
    expect(error.message).toContain('Failed to fetch');
  });

  it('refuses a successful answer that is not JSON', async () => {
    const { api } = recording(() => new Response('<html>login</html>', { status: 200 }));
    const error = await failure(api.experiments());
    expect(error.code).toBe('bad_response');
    expect(error.message).toContain('api/experiments');
  });
});

describe('pages', () => {
  it('walks a list page by page with next_cursor', async () => {
    // A server of 5 jobs, newest first, where the cursor continues below an id.
    const ids = [5, 4, 3, 2, 1];
    const api = new MlplatApi(async path => {
      const url = new URL(path, 'http://x/');
      const below = Number(url.searchParams.get('cursor') ?? Infinity);
      const limit = Number(url.searchParams.get('limit'));
      const items = ids
        .filter(id => id < below)
        .slice(0, limit)
        .map(id => ({ id }));
      const more = ids.filter(id => id < below).length > limit;
      return json({ items, next_cursor: more ? String(items[items.length - 1].id) : null });
    });
    const pages: Array<Page<{ id: number }>> = [];
    let cursor: string | null = null;
    do {
      const page = (await api.jobs({ cursor, limit: 2 })) as unknown as Page<{ id: number }>;
      pages.push(page);
      cursor = page.next_cursor;
    } while (cursor);
    expect(pages.map(p => p.items.map(i => i.id))).toEqual([[5, 4], [3, 2], [1]]);
    expect(pages.map(p => p.next_cursor)).toEqual(['4', '2', null]);
  });

  it('shows each row once, where it was first seen', () => {
    const rows = flattenPages(
      [
        [{ id: 'a' }, { id: 'b' }],
        [{ id: 'b' }, { id: 'c' }]
      ],
      r => r.id
    );
    expect(rows.map(r => r.id)).toEqual(['a', 'b', 'c']);
  });

  it('replaces only the first page on refresh', () => {
    const pages = [['a', 'b'], ['c', 'd'], ['e']];
    expect(withFreshFirstPage(pages, ['z', 'a'])).toEqual([['z', 'a'], ['c', 'd'], ['e']]);
    expect(pages[0]).toEqual(['a', 'b']);
    expect(withFreshFirstPage([], ['a'])).toEqual([['a']]);
  });
});
